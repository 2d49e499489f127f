package localstack_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// recorder is a fake stream function: it records every record it is handed, and can be told
// to fail.
type recorder struct {
	mu      sync.Mutex
	batches [][]events.DynamoDBEventRecord
	// fail decides the response for a batch: nil = success, else the items to report failed,
	// or an error for the whole batch.
	fail func(batch []events.DynamoDBEventRecord, call int) ([]string, error)
}

func (r *recorder) handle(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	r.mu.Lock()
	r.batches = append(r.batches, ev.Records)
	call := len(r.batches)
	r.mu.Unlock()
	var resp events.DynamoDBEventResponse
	if r.fail != nil {
		ids, err := r.fail(ev.Records, call)
		if err != nil {
			return resp, err
		}
		for _, id := range ids {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: id})
		}
	}
	return resp, nil
}

func (r *recorder) records() []events.DynamoDBEventRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.DynamoDBEventRecord
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

func (r *recorder) waitFor(t *testing.T, n int) []events.DynamoDBEventRecord {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if recs := r.records(); len(recs) >= n {
			return recs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("got %d records, want %d", len(r.records()), n)
	return nil
}

type streamFixture struct {
	tpl   *samtemplate.Template
	db    *dynamodb.Client
	table string
	env   *testenv.Env
}

func newStreamFixture(t *testing.T) *streamFixture {
	db, table := testenv.NewTable(t)
	env := testenv.Start(t)
	return &streamFixture{tpl: env.Template, db: db, table: table, env: env}
}

// run starts a runner with the given handlers until the returned stop is called.
func (f *streamFixture) run(t *testing.T, dir string, handlers map[string]any, functions ...string) (stop func()) {
	t.Helper()
	lookup := func(_ context.Context, id string) (any, error) {
		if h, ok := handlers[id]; ok {
			return h, nil
		}
		return nil, fmt.Errorf("no handler %s", id)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := localstack.NewStreamRunner(localstack.StreamRunnerOptions{
		Template:      f.tpl,
		Invoker:       localstack.NewInvoker(f.tpl, lookup, log),
		DynamoDB:      f.db,
		Streams:       localstack.NewStreamsClient(f.env.DynamoDBEndpoint),
		TableName:     f.table,
		CheckpointDir: dir,
		PollInterval:  20 * time.Millisecond,
		MaxBackoff:    100 * time.Millisecond,
		Functions:     functions,
		Logger:        log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (f *streamFixture) put(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := f.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &f.table, Item: item}); err != nil {
		t.Fatal(err)
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": s(pk), "SK": s("X")}
}

func TestStreamRunnerDeliversImages(t *testing.T) {
	f := newStreamFixture(t)
	mailer, audit := &recorder{}, &recorder{}
	f.run(t, t.TempDir(), map[string]any{"MailerFunction": mailer.handle, "AuditFunction": audit.handle})

	item := key("P#1")
	item["n"] = &types.AttributeValueMemberN{Value: "42.5"}
	item["b"] = &types.AttributeValueMemberB{Value: []byte{0, 1, 2}}
	item["ok"] = &types.AttributeValueMemberBOOL{Value: true}
	item["nothing"] = &types.AttributeValueMemberNULL{Value: true}
	item["l"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{s("x"), &types.AttributeValueMemberN{Value: "1"}}}
	item["m"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"inner": s("y")}}
	item["ss"] = &types.AttributeValueMemberSS{Value: []string{"a", "b"}}
	item["ns"] = &types.AttributeValueMemberNS{Value: []string{"1", "2"}}
	item["bs"] = &types.AttributeValueMemberBS{Value: [][]byte{{9}, {8}}}
	f.put(t, item)

	modified := key("P#1")
	modified["state"] = s("active")
	f.put(t, modified)
	if _, err := f.db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: &f.table, Key: key("P#1")}); err != nil {
		t.Fatal(err)
	}

	for name, rec := range map[string]*recorder{"mailer": mailer, "audit": audit} {
		recs := rec.waitFor(t, 3)
		if len(recs) != 3 {
			t.Fatalf("%s: %d records", name, len(recs))
		}
		ins, mod, rem := recs[0], recs[1], recs[2]
		if ins.EventName != "INSERT" || mod.EventName != "MODIFY" || rem.EventName != "REMOVE" {
			t.Fatalf("%s: events %s %s %s", name, ins.EventName, mod.EventName, rem.EventName)
		}
		ni := ins.Change.NewImage
		if ni["n"].Number() != "42.5" || string(ni["b"].Binary()) != "\x00\x01\x02" || !ni["ok"].Boolean() ||
			!ni["nothing"].IsNull() || ni["l"].List()[0].String() != "x" || ni["l"].List()[1].Number() != "1" ||
			ni["m"].Map()["inner"].String() != "y" || strings.Join(sorted(ni["ss"].StringSet()), ",") != "a,b" ||
			strings.Join(sorted(ni["ns"].NumberSet()), ",") != "1,2" || len(ni["bs"].BinarySet()) != 2 {
			t.Errorf("%s: new image %+v", name, ni)
		}
		if ins.Change.OldImage != nil || ins.Change.Keys["PK"].String() != "P#1" || ins.Change.Keys["SK"].String() != "X" {
			t.Errorf("%s: insert keys/old image %+v", name, ins.Change)
		}
		if mod.Change.OldImage["n"].Number() != "42.5" || mod.Change.NewImage["state"].String() != "active" {
			t.Errorf("%s: modify images %+v", name, mod.Change)
		}
		if rem.Change.NewImage != nil || rem.Change.OldImage["state"].String() != "active" {
			t.Errorf("%s: remove images %+v", name, rem.Change)
		}
		for _, r := range recs {
			if !strings.Contains(r.EventSourceArn, f.table) || r.Change.SequenceNumber == "" || r.EventSource != "aws:dynamodb" ||
				r.AWSRegion != "us-east-1" || r.Change.StreamViewType != "NEW_AND_OLD_IMAGES" ||
				r.Change.ApproximateCreationDateTime.IsZero() || r.EventID == "" {
				t.Errorf("%s: record metadata %+v", name, r)
			}
		}
	}
}

func TestStreamRunnerRetriesFromFailedRecord(t *testing.T) {
	f := newStreamFixture(t)
	// Write first, so the five records arrive in one batch.
	for i := 0; i < 5; i++ {
		f.put(t, key(fmt.Sprintf("P#%d", i)))
	}
	failedOnce := map[string]bool{}
	var mu sync.Mutex
	rec := &recorder{fail: func(batch []events.DynamoDBEventRecord, call int) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		// Report P#2 and P#4 as failed the first time they are seen.
		var failed []string
		for _, r := range batch {
			pk := r.Change.Keys["PK"].String()
			if (pk == "P#2" || pk == "P#4") && !failedOnce[pk] {
				failedOnce[pk] = true
				failed = append(failed, r.Change.SequenceNumber)
			}
		}
		return failed, nil
	}}
	f.run(t, t.TempDir(), map[string]any{"MailerFunction": rec.handle}, "MailerFunction")
	rec.waitFor(t, 5+3)
	time.Sleep(300 * time.Millisecond) // nothing more may arrive

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got []string
	for _, b := range rec.batches {
		var pks []string
		for _, r := range b {
			pks = append(pks, r.Change.Keys["PK"].String())
		}
		got = append(got, strings.Join(pks, ","))
	}
	// P#0,P#1 succeed; the retry starts at P#2 (the first failure), P#3 after it is delivered
	// again, P#4 was failed in the first batch too and succeeds in the second.
	want := []string{"P#0,P#1,P#2,P#3,P#4", "P#2,P#3,P#4"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("batches\n got %v\nwant %v", got, want)
	}
}

func TestStreamRunnerRetriesFunctionErrorsWithBisect(t *testing.T) {
	f := newStreamFixture(t)
	for i := 0; i < 4; i++ {
		f.put(t, key(fmt.Sprintf("P#%d", i)))
	}
	rec := &recorder{fail: func(batch []events.DynamoDBEventRecord, call int) ([]string, error) {
		if call == 1 {
			return nil, errors.New("transient")
		}
		return nil, nil
	}}
	f.run(t, "", map[string]any{"MailerFunction": rec.handle}, "MailerFunction")
	rec.waitFor(t, 4+4)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// The failed batch of 4 is retried in halves (BisectBatchOnFunctionError), then full batches.
	sizes := []int{}
	for _, b := range rec.batches {
		sizes = append(sizes, len(b))
	}
	if fmt.Sprint(sizes) != "[4 2 2]" {
		t.Errorf("batch sizes %v, want [4 2 2]", sizes)
	}
}

func TestStreamRunnerResumesFromCheckpoint(t *testing.T) {
	f := newStreamFixture(t)
	dir := t.TempDir()
	first := &recorder{}
	stop := f.run(t, dir, map[string]any{"MailerFunction": first.handle}, "MailerFunction")
	f.put(t, key("P#a"))
	f.put(t, key("P#b"))
	first.waitFor(t, 2)
	stop()

	if _, err := os.Stat(filepath.Join(dir, "MailerFunction.TableStream.json")); err != nil {
		t.Fatalf("no checkpoint: %v", err)
	}
	f.put(t, key("P#c"))
	second := &recorder{}
	f.run(t, dir, map[string]any{"MailerFunction": second.handle}, "MailerFunction")
	second.waitFor(t, 1)
	time.Sleep(200 * time.Millisecond)
	recs := second.records()
	if len(recs) != 1 || recs[0].Change.Keys["PK"].String() != "P#c" {
		var pks []string
		for _, r := range recs {
			pks = append(pks, r.Change.Keys["PK"].String())
		}
		t.Errorf("after restart got %v, want only P#c", pks)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
