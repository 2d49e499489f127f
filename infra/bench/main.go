// Command bench is `make bench` (docs/api.md#performance-budgets): it starts its own DynamoDB Local, runs
// bulk enroll and listing through the real service and store, runs the plainest direct SDK
// loop doing the same work on the same DynamoDB Local, and writes bench/results.json.
//
// Budgets checked: bulk enroll at least 0.8x the throughput of a raw BatchWriteItem loop with
// as many concurrent writers as the store uses (the sequential loop is reported beside); at
// most 1.05 table write units per changed item; zero write units for a no-op repeat; a list
// page at most 1.5x a raw Query; cold start of each function at most 2.0x the init time and
// 1.7x the peak RSS of a hello-world function; each function binary at most 15 MB.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// Case is one row of results.json.
type Case struct {
	Name            string  `json:"name"`
	Items           int     `json:"items"`
	ItemsChanged    int     `json:"items_changed"`
	Seconds         float64 `json:"seconds"`
	ItemsPerSecond  float64 `json:"items_per_second"`
	Requests        int64   `json:"requests"`
	ReadUnits       float64 `json:"read_units"`
	WriteUnits      float64 `json:"write_units"`       // the table's write units (what one changed item costs)
	IndexWriteUnits float64 `json:"index_write_units"` // the GSIs' write units on top
	BaselineSeconds float64 `json:"baseline_seconds"`
	RatioToBaseline float64 `json:"ratio_to_baseline"`
	// The bulk baselines ask for ReturnConsumedCapacity=INDEXES as the store does: DynamoDB
	// Local then spends 30-50% more on each write (measured), a cost of the emulator's
	// accounting that AWS does not charge. The plain loop without it is reported beside.
	PlainBaselineSeconds float64 `json:"plain_baseline_seconds,omitempty"`
	RatioToPlainBaseline float64 `json:"ratio_to_plain_baseline,omitempty"`
	// Bulk cases: the baseline runs Writers BatchWriteItem calls at once, as the store does;
	// the sequential loop (one call at a time) is reported beside.
	Writers                   int       `json:"writers,omitempty"`
	SequentialBaselineSeconds float64   `json:"sequential_baseline_seconds,omitempty"`
	RatioToSequential         float64   `json:"ratio_to_sequential,omitempty"`
	RunRatios                 []float64 `json:"run_ratios,omitempty"` // every run's ratio_to_baseline; the row is the median run
	// mail_drain_10000: SendBulkEmail calls beside their floor (50 destinations a call).
	SESCalls            int64   `json:"ses_calls,omitempty"`
	SESCallsFloor       int64   `json:"ses_calls_floor,omitempty"`
	DestinationsPerCall float64 `json:"destinations_per_call,omitempty"`
	// Cold-start cases: peak RSS beside the hello-world baseline's.
	PeakRSSBytes     int64   `json:"peak_rss_bytes,omitempty"`
	BaselineRSSBytes int64   `json:"baseline_rss_bytes,omitempty"`
	RSSRatio         float64 `json:"rss_ratio,omitempty"`
	Note             string  `json:"note,omitempty"`
	// Job cases (job.go): seconds from the 202 to the first processed row; enrollment items
	// written.
	FirstProgressSeconds float64 `json:"first_progress_seconds,omitempty"`
	// Bulk cases: the raw BatchGetItem loop over the keys a new learner needs read (its
	// account and its enrollment), and the ratio the raw write loop would keep if it also read
	// them first: base / (base + raw read). DynamoDB Local serves a BatchGetItem's keys one
	// at a time (about 0.12 ms a key here, whatever the concurrency), so this is the ceiling of
	// read-then-write code on this emulator.
	RawReadKeys      int     `json:"raw_read_keys,omitempty"`
	RawReadSeconds   float64 `json:"raw_read_seconds,omitempty"`
	ReadWriteCeiling float64 `json:"read_write_ceiling,omitempty"`
	EnrollmentWrites int64   `json:"enrollment_writes,omitempty"`
}

// Results is bench/results.json.
type Results struct {
	Cases       []Case           `json:"cases"`
	BinaryBytes map[string]int64 `json:"binary_bytes"`
	Budgets     []Budget         `json:"budgets"`
}

// Budget is one performance budget (docs/api.md#performance-budgets) and whether it held.
type Budget struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit string  `json:"limit"`
	OK    bool    `json:"ok"`
}

const course = "course-v1:Bench+Bulk+2026"
const listCourse = "course-v1:Bench+List+2026"

func main() {
	out := flag.String("out", "bench/results.json", "where to write the results")
	listSize := flag.Int("list-size", 100_000, "enrollments in the listed course")
	pages := flag.Int("pages", 100, "pages of 100 to time")
	skipBinaries := flag.Bool("skip-binaries", false, "do not build the function binaries")
	runs := flag.Int("runs", 3, "runs of each bulk case; the median run is reported")
	coldRuns := flag.Int("coldstart-runs", 20, "starts of each function for the cold-start cases")
	coldOnly := flag.Bool("coldstart-only", false, "run only the cold-start cases (no DynamoDB Local)")
	mails := flag.Int("mails", 10_000, "invitations drained by the mailer")
	mailRate := flag.Float64("mail-rate", 200, "the mailer's send rate (messages a second)")
	only := flag.String("only", "", "run only this case (bulk, list, mail, job), then the cold-start cases")
	jobRows := flag.Int("job-rows", 100_000, "identifier x course pairs of the job case")
	jobPollers := flag.Int("job-pollers", 8, "concurrent worker invocations in the job case")
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *coldOnly {
		cases, err := coldStartCases(*coldRuns)
		check(err)
		res := Results{Cases: cases}
		res.Budgets = budgets(res)
		printTable(os.Stdout, res)
		return
	}

	dir, err := os.MkdirTemp("", "rollcall-bench-")
	check(err)
	defer os.RemoveAll(dir)
	ddb, err := localstack.StartDynamoDBLocal(ctx, localstack.DynamoDBOptions{InMemory: true, DataDir: dir})
	check(err)
	defer ddb.Stop()
	tpl, err := samtemplate.LoadDefault()
	check(err)
	client := localstack.NewDynamoDBClient(ddb.Endpoint)
	// Without streams: nothing reads them here, and DynamoDB Local slows every write by the
	// number of stream records it already holds, which would charge each case (and each
	// baseline, which runs after its case) for the writes before it.
	for _, t := range []string{"rollcall-bench", "rollcall-baseline", "rollcall-baseline-seq", "rollcall-baseline-plain"} {
		check(localstack.EnsureTable(ctx, client, tpl, t, localstack.WithoutStream()))
	}

	cfg := app.Config{Stage: "local", TableName: "rollcall-bench", Region: "us-east-1", DynamoDBEndpoint: ddb.Endpoint,
		JWTSecret: "bench", SigningSecret: "bench-signing-secret-0123456789", Logger: log}
	d, err := app.Build(ctx, cfg)
	check(err)
	staff := rollcall.Actor{Username: "bench", Staff: true}
	for _, c := range []string{course, listCourse} {
		title := "Bench"
		_, _, err := d.Service.PutCourse(ctx, staff, c, rollcall.CourseInput{Title: &title})
		check(err)
	}
	raw := &rawLoop{db: d.DynamoDB, table: "rollcall-baseline", seqTable: "rollcall-baseline-seq", plainTable: "rollcall-baseline-plain"}

	want := func(c string) bool { return *only == "" || *only == c }
	var res Results
	if want("bulk") {
		// Warm the JVM (its JIT needs a few thousand writes) and the connection pools on
		// every path first, so that no case is charged with start-up.
		for i := range 3 {
			_ = bulkCase(ctx, d, raw, staff, "warm-up", fmt.Sprintf("w%d", i), 2_000)
		}
		// Bulk enroll of new learners: 1,000, then 10,000, then the 10,000 again (all
		// no-ops). Each runs several times (new learners each time; the repeat repeats the
		// first 10,000) and the median run is reported: this machine is shared and noisy.
		var small, big, repeat []Case
		for i := range *runs {
			small = append(small, bulkCase(ctx, d, raw, staff, "bulk_enroll_1000", fmt.Sprintf("a%d", i), 1_000))
		}
		for i := range *runs {
			big = append(big, bulkCase(ctx, d, raw, staff, "bulk_enroll_10000", fmt.Sprintf("b%d", i), 10_000))
		}
		for range *runs {
			repeat = append(repeat, bulkCase(ctx, d, raw, staff, "bulk_enroll_10000_repeat", "b0", 10_000))
		}
		res.Cases = append(res.Cases, median(small), median(big), median(repeat))
	}
	if want("list") {
		res.Cases = append(res.Cases, listCase(ctx, d, raw, staff, *listSize, *pages))
	}
	if want("mail") {
		res.Cases = append(res.Cases, mailDrainCase(ctx, ddb.Endpoint, tpl, log, *mails, *mailRate))
	}
	if want("job") {
		res.Cases = append(res.Cases, jobCases(ctx, ddb.Endpoint, tpl, log, raw, *jobRows, *jobPollers)...)
	}
	cold, err := coldStartCases(*coldRuns)
	check(err)
	res.Cases = append(res.Cases, cold...)
	if !*skipBinaries {
		res.BinaryBytes = binarySizes()
	}
	res.Budgets = budgets(res)

	printTable(os.Stdout, res)
	check(os.MkdirAll(filepath.Dir(*out), 0o755))
	b, _ := json.MarshalIndent(res, "", "  ")
	check(os.WriteFile(*out, append(b, '\n'), 0o644))
	fmt.Printf("\nwrote %s\n", *out)
	for _, b := range res.Budgets {
		if !b.OK {
			fmt.Fprintf(os.Stderr, "budget not met: %s = %.3f (limit %s)\n", b.Name, b.Value, b.Limit)
			os.Exit(1)
		}
	}
}

func learners(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("learner-%s-%05d@bench.example.com", prefix, i)
	}
	return ids
}

// bulkCase runs one bulk enroll through the service and the raw loop over the same items.
func bulkCase(ctx context.Context, d *app.Deps, raw *rawLoop, staff rollcall.Actor, name, prefix string, n int) Case {
	ids := learners(prefix, n)
	fields := rollcall.Fields{
		"identifiers": {Present: true, List: true, Values: ids},
		"courses":     {Present: true, Values: []string{course}},
		"action":      {Present: true, Values: []string{"enroll"}},
	}
	m0 := d.Store.Metrics.Snapshot()
	start := time.Now()
	resp, err := d.Service.BulkEnroll(ctx, staff, fields)
	check(err)
	secs := time.Since(start).Seconds()
	m := d.Store.Metrics.Snapshot().Sub(m0)
	changed := 0
	for _, r := range resp.Courses[course].Results {
		if r.Error {
			panic("bench: an item failed: " + r.Identifier)
		}
		if r.Before != r.After {
			changed++
		}
	}
	// The baseline writes the very items the service wrote, with a plain BatchWriteItem loop.
	enrollmentIDs := make([]string, n)
	for i, id := range ids {
		enrollmentIDs[i] = rollcall.EnrollmentID(course, id)
	}
	stored, err := d.Store.GetEnrollments(ctx, enrollmentIDs)
	check(err)
	items := make([]map[string]types.AttributeValue, 0, n)
	for _, e := range stored {
		items = append(items, dynamo.EncodeEnrollment(e))
	}
	writers := d.Store.Parallel
	baseSecs := raw.write(ctx, raw.table, items, types.ReturnConsumedCapacityIndexes, writers)
	seqSecs := raw.write(ctx, raw.seqTable, items, types.ReturnConsumedCapacityIndexes, 1)
	plainSecs := raw.write(ctx, raw.plainTable, items, "", writers)
	// What any code that must know each learner's account and enrollment reads before it
	// writes: the two keys of every learner, read by the plainest BatchGetItem loop with the
	// same writers, on the baseline table (which holds the items just written).
	keys := make([]map[string]types.AttributeValue, 0, 2*n)
	for _, id := range ids {
		pk, sk := dynamo.PersonUserKey(id)
		keys = append(keys, map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk},
			"SK": &types.AttributeValueMemberS{Value: sk}})
	}
	for _, it := range items {
		keys = append(keys, map[string]types.AttributeValue{"PK": it["PK"], "SK": it["SK"]})
	}
	readSecs := 0.0
	if changed > 0 { // a repeat writes nothing: no write loop to put the reads beside
		readSecs = raw.read(ctx, raw.table, keys, writers)
	}
	c := Case{Name: name, Items: n, ItemsChanged: changed, Seconds: secs, ItemsPerSecond: float64(n) / secs,
		Requests: m.Requests, ReadUnits: m.ReadUnits, WriteUnits: m.TableWriteUnits, IndexWriteUnits: m.IndexWriteUnits,
		BaselineSeconds: baseSecs, PlainBaselineSeconds: plainSecs, Writers: writers, SequentialBaselineSeconds: seqSecs}
	c.RatioToBaseline = baseSecs / secs // throughputs of the same n items
	c.RatioToPlainBaseline = plainSecs / secs
	c.RatioToSequential = seqSecs / secs
	if readSecs > 0 {
		c.RawReadSeconds, c.RawReadKeys = readSecs, len(keys)
		c.ReadWriteCeiling = baseSecs / (baseSecs + readSecs)
	}
	if changed == 0 {
		c.Note = "a no-op repeat: the baseline rewrites the same items"
	}
	return c
}

// listCase fills a course with size enrollments and times pages of 100 through the service
// (16 shards merged, cursor signed and checked) against one plain Query of 100 items.
func listCase(ctx context.Context, d *app.Deps, raw *rawLoop, staff rollcall.Actor, size, pages int) Case {
	now := time.Now().UTC()
	es := make([]*rollcall.Enrollment, size)
	for i := range es {
		email := fmt.Sprintf("listed-%06d@bench.example.com", i)
		at := now.Add(-time.Duration(size-i) * time.Second)
		es[i] = &rollcall.Enrollment{ID: rollcall.EnrollmentID(listCourse, email), CourseID: listCourse, Email: email,
			Username: fmt.Sprintf("listed%06d", i), State: rollcall.StateActive, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode,
			CreatedAt: at, UpdatedAt: at, Version: 1}
	}
	fill := time.Now()
	failed, err := d.Store.PutEnrollments(ctx, es)
	check(err)
	if len(failed) > 0 {
		panic(fmt.Sprintf("bench: %d items not written", len(failed)))
	}
	fmt.Fprintf(os.Stderr, "filled %d enrollments in %.1fs\n", size, time.Since(fill).Seconds())

	page := func(cursor string) (*rollcall.ListResult, error) {
		return d.Service.ListCourseEnrollments(ctx, staff, listCourse, rollcall.CourseListQuery{PageSize: "100", Cursor: cursor})
	}
	// Warm both paths once, then interleave so that machine noise hits both alike.
	_, err = page("")
	check(err)
	raw.query(ctx, listCourse)
	var ours, base time.Duration
	m0 := d.Store.Metrics.Snapshot()
	cursor := ""
	got := 0
	for i := 0; i < pages; i++ {
		start := time.Now()
		r, err := page(cursor)
		check(err)
		ours += time.Since(start)
		got += len(r.Items)
		if len(r.Items) != 100 {
			panic(fmt.Sprintf("bench: page %d has %d items", i, len(r.Items)))
		}
		cursor = r.Next
		base += raw.query(ctx, listCourse)
	}
	m := d.Store.Metrics.Snapshot().Sub(m0)
	perPage := ours.Seconds() / float64(pages)
	basePerPage := base.Seconds() / float64(pages)
	return Case{Name: "list_page_100k", Items: got, Seconds: ours.Seconds(), ItemsPerSecond: float64(got) / ours.Seconds(),
		Requests: m.Requests, ReadUnits: m.ReadUnits, BaselineSeconds: base.Seconds(), RatioToBaseline: perPage / basePerPage,
		Note: fmt.Sprintf("%d pages of 100 from %d enrollments; seconds per page %.4f vs %.4f", pages, size, perPage, basePerPage)}
}

// rawLoop is the plainest direct SDK code doing the same work.
type rawLoop struct {
	db         *dynamodb.Client
	table      string // for the loop that asks for consumed capacity, as the store does
	seqTable   string // the same, one call at a time
	plainTable string // for the loop that does not
}

// write puts items with BatchWriteItem calls of 25, writers calls at once (1: a sequential
// loop), retrying unprocessed items: the plainest code that writes them as fast as that many
// writers can.
func (r *rawLoop) write(ctx context.Context, table string, items []map[string]types.AttributeValue, rcc types.ReturnConsumedCapacity, writers int) float64 {
	return inChunks(items, 25, writers, func(chunk []map[string]types.AttributeValue) {
		reqs := make([]types.WriteRequest, 0, len(chunk))
		for _, it := range chunk {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		for len(reqs) > 0 {
			out, err := r.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs},
				ReturnConsumedCapacity: rcc})
			check(err)
			reqs = out.UnprocessedItems[table]
		}
	})
}

// read gets keys with BatchGetItem calls of 100, writers calls at once, retrying unprocessed
// keys: the plainest code that reads them.
func (r *rawLoop) read(ctx context.Context, table string, keys []map[string]types.AttributeValue, writers int) float64 {
	return inChunks(keys, 100, writers, func(chunk []map[string]types.AttributeValue) {
		ka := types.KeysAndAttributes{Keys: chunk, ConsistentRead: aws.Bool(true)}
		for len(ka.Keys) > 0 {
			out, err := r.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: ka},
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			check(err)
			ka.Keys = out.UnprocessedKeys[table].Keys
		}
	})
}

// inChunks runs call over xs in chunks of size, workers calls at once, and returns the
// seconds it took.
func inChunks[T any](xs []T, size, workers int, call func([]T)) float64 {
	start := time.Now()
	chunks := make(chan []T)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range chunks {
				call(chunk)
			}
		}()
	}
	for lo := 0; lo < len(xs); lo += size {
		chunks <- xs[lo:min(lo+size, len(xs))]
	}
	close(chunks)
	wg.Wait()
	return time.Since(start).Seconds()
}

// query is one plain Query of 100 items, newest first, on one shard of the course in the
// bench table (the same index and item shape the list reads).
func (r *rawLoop) query(ctx context.Context, courseID string) time.Duration {
	start := time.Now()
	out, err := r.db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("rollcall-bench"), IndexName: aws.String(dynamo.IndexCourse),
		KeyConditionExpression:    aws.String("GSI1PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: dynamo.CourseIndexPK(courseID, 0)}},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(100)})
	check(err)
	if len(out.Items) != 100 {
		panic(fmt.Sprintf("bench: raw query returned %d items", len(out.Items)))
	}
	return time.Since(start)
}

// binarySizes builds every function as SAM does and reports its size.
func binarySizes() map[string]int64 {
	dir, err := os.MkdirTemp("", "rollcall-bin-")
	check(err)
	defer os.RemoveAll(dir)
	tpl, err := samtemplate.LoadDefault()
	check(err)
	sizes := map[string]int64{}
	var mu sync.Mutex
	for _, f := range tpl.Functions() {
		target := filepath.Join(dir, f.LogicalID)
		cmd := exec.Command("make", "--no-print-directory", "build-"+f.LogicalID, "ARTIFACTS_DIR="+target)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		check(cmd.Run())
		st, err := os.Stat(filepath.Join(target, "bootstrap"))
		check(err)
		mu.Lock()
		sizes[f.LogicalID] = st.Size()
		mu.Unlock()
	}
	return sizes
}

func budgets(r Results) []Budget {
	var out []Budget
	for _, c := range r.Cases {
		switch {
		case strings.HasPrefix(c.Name, "job_"):
			out = append(out, jobBudgets(c)...)
		case strings.HasSuffix(c.Name, "_repeat"):
			out = append(out, Budget{c.Name + " write units", c.WriteUnits + c.IndexWriteUnits, "== 0", c.WriteUnits+c.IndexWriteUnits == 0})
		case strings.HasPrefix(c.Name, "bulk_"):
			out = append(out, Budget{c.Name + " throughput / raw loop, same writers", c.RatioToBaseline, ">= 0.8", c.RatioToBaseline >= 0.8})
			per := c.WriteUnits / float64(max(c.ItemsChanged, 1))
			out = append(out, Budget{c.Name + " table write units per changed item", per, "<= 1.05", per <= 1.05})
		case strings.HasPrefix(c.Name, "coldstart_"):
			out = append(out, Budget{c.Name + " init time / hello world", c.RatioToBaseline, "<= 2.0", c.RatioToBaseline <= 2.0})
			out = append(out, Budget{c.Name + " peak RSS / hello world", c.RSSRatio, "<= 1.7", c.RSSRatio <= 1.7})
		case strings.HasPrefix(c.Name, "mail_drain"):
			out = append(out, Budget{c.Name + " SendBulkEmail calls", float64(c.SESCalls), "<= 210", c.SESCalls <= 210 && c.SESCalls > 0})
			out = append(out, Budget{c.Name + " drain time / what the send rate allows", c.RatioToBaseline, "<= 1.3", c.RatioToBaseline <= 1.3})
		case strings.HasPrefix(c.Name, "list_"):
			out = append(out, Budget{c.Name + " seconds per page / raw Query", c.RatioToBaseline, "<= 1.5", c.RatioToBaseline <= 1.5})
		}
	}
	for name, size := range r.BinaryBytes {
		out = append(out, Budget{name + " binary bytes", float64(size), "<= 15 MB", size <= 15<<20})
	}
	return out
}

func printTable(w io.Writer, r Results) {
	fmt.Fprintf(w, "%-26s %7s %7s %8s %9s %6s %9s %9s %9s %9s %7s %9s %7s  %s\n", "case", "items", "changed", "seconds", "items/s", "reqs", "RCU", "WCU", "idx WCU",
		"base s", "ratio", "plain s", "ratio", "seq s/ratio, runs")
	for _, c := range r.Cases {
		runs := make([]string, len(c.RunRatios))
		for i, x := range c.RunRatios {
			runs[i] = fmt.Sprintf("%.2f", x)
		}
		plain := fmt.Sprintf("%9s %7s", "-", "-")
		if c.PlainBaselineSeconds > 0 {
			plain = fmt.Sprintf("%9.3f %7.2f", c.PlainBaselineSeconds, c.RatioToPlainBaseline)
		}
		seq := ""
		if c.SequentialBaselineSeconds > 0 {
			seq = fmt.Sprintf("%.3f/%.2f, ", c.SequentialBaselineSeconds, c.RatioToSequential)
		}
		fmt.Fprintf(w, "%-26s %7d %7d %8.3f %9.0f %6d %9.1f %9.1f %9.1f %9.3f %7.2f %s  %s%s\n", c.Name, c.Items, c.ItemsChanged, c.Seconds,
			c.ItemsPerSecond, c.Requests, c.ReadUnits, c.WriteUnits, c.IndexWriteUnits, c.BaselineSeconds, c.RatioToBaseline,
			plain, seq, strings.Join(runs, " "))
	}
	fmt.Fprintln(w)
	for _, c := range r.Cases {
		if c.ReadWriteCeiling > 0 {
			fmt.Fprintf(w, "%s: the raw loop reads the %d keys first in %.3fs (%.3f ms a key): read-then-write ceiling %.2f\n",
				c.Name, c.RawReadKeys, c.RawReadSeconds, 1000*c.RawReadSeconds/float64(c.RawReadKeys), c.ReadWriteCeiling)
		}
	}
	fmt.Fprintln(w)
	for _, b := range r.Budgets {
		mark := "ok  "
		if !b.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %-58s %12.3f  %s\n", mark, b.Name, b.Value, b.Limit)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// median returns the run with the median ratio_to_baseline, listing every run's ratio.
func median(runs []Case) Case {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b Case) int { return cmp.Compare(a.RatioToBaseline, b.RatioToBaseline) })
	c := sorted[len(sorted)/2]
	for _, r := range runs {
		c.RunRatios = append(c.RunRatios, r.RatioToBaseline)
	}
	return c
}
