// Command load is `make load`: a bounded loopback load on the local stack. It starts a
// throwaway stack (infra/internal/stackup: DynamoDB Local in memory, the SES emulator, the
// gateway and handlers of `go run ./infra/local run`, on free ports) or targets one with -url,
// seeds courses and learners, then runs -clients concurrent clients for -duration mixing
//
//	so2_list     GET  /api/so2/v1/enrollments?course_id=C&page_size=50
//	course_list  GET  /api/courses/{C}/enrollments?page_size=50[&state=invited|active|unenrolled]
//	user_list    GET  /api/users/{u}/enrollments
//	bulk_enroll  POST /api/bulk_enroll/v1/bulk_enroll/  (a few overlapping learners into 1-2 of a few courses)
//
// and prints per kind: requests, errors, p50, p90, p99 and max latency; then, from the Debug line
// every small bulk request logs when it ends (in a stack it started), where their time went:
// store round trips, commit attempts, why attempts were refused, time per phase. Every answer other than
// the expected 200 is an error (a 4xx the load does not provoke, any 5xx, a transport error);
// the exit status is 1 if there was any. Traffic goes to 127.0.0.1 (loopback) only.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rollcall/rollcall/infra/internal/stackup"
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/auth"
)

// The kinds of request, in report order.
var kinds = []string{"so2_list", "course_list", "user_list", "bulk_enroll"}

type config struct {
	url        string
	token      string
	clients    int
	duration   time.Duration
	courses    int
	users      int
	emails     int
	bulkSize   int
	bulkShare  float64
	unenroll   float64
	timeout    time.Duration
	seed       uint64
	withStream bool
	verbose    bool
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "target a running stack (loopback only), e.g. http://127.0.0.1:3000; default: start one")
	flag.StringVar(&c.token, "token", "", "staff bearer token for -url (default: signed with JWT_SECRET or the local default, like make token ADMIN=1)")
	flag.IntVar(&c.clients, "clients", 50, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long to load")
	flag.IntVar(&c.courses, "courses", 10, "courses the load uses")
	flag.IntVar(&c.users, "users", 40, "registered learners (usernames in bulk requests, user lists)")
	flag.IntVar(&c.emails, "emails", 160, "unregistered learners (emails in bulk requests: invitations)")
	flag.IntVar(&c.bulkSize, "bulk-size", 5, "identifiers per bulk request")
	flag.Float64Var(&c.bulkShare, "bulk-share", 0.05, "share of requests that are bulk enrolls (the rest are lists, evenly)")
	flag.Float64Var(&c.unenroll, "unenroll-share", 0.2, "share of bulk requests that unenroll")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	flag.BoolVar(&c.withStream, "streams", true, "run the stream consumers (mailer, audit) in the started stack, as make run does")
	flag.BoolVar(&c.verbose, "v", false, "log the gateway's access lines")
	flag.Parse()
	os.Exit(run(c))
}

func run(c config) int {
	if c.clients < 1 || c.duration <= 0 || c.courses < 1 || c.users < 1 || c.bulkSize < 1 {
		return fail(errors.New("-clients, -duration, -courses, -users and -bulk-size must be positive"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	tally := newTraceTally()
	fnLog := slog.New(&traceHandler{next: log.Handler(), level: level, tally: tally})

	if c.url == "" {
		t0 := time.Now()
		st, err := stackup.Start(ctx, stackup.Options{TablePrefix: "rollcall-load", NoStreams: !c.withStream, Logger: log, FunctionLogger: fnLog})
		if err != nil {
			return fail(err)
		}
		defer st.Close()
		c.url = st.URL
		if c.token == "" {
			if c.token, err = st.Token("load-staff", true); err != nil {
				return fail(err)
			}
		}
		fmt.Printf("local stack at %s (DynamoDB %s, table %s) in %.1fs\n", st.URL, st.DynamoDBEndpoint, st.TableName, time.Since(t0).Seconds())
	} else {
		if err := loopbackOnly(c.url); err != nil {
			return fail(err)
		}
		c.url = strings.TrimRight(c.url, "/")
		if c.token == "" {
			secret := os.Getenv("JWT_SECRET")
			if secret == "" {
				secret = app.DefaultLocalJWTSecret
			}
			tok, err := auth.IssueLocal([]byte(secret), "load-staff", "load-staff@example.com", true, time.Hour)
			if err != nil {
				return fail(err)
			}
			c.token = tok
		}
	}

	tr := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        c.clients * 2,
		MaxIdleConnsPerHost: c.clients * 2,
		IdleConnTimeout:     90 * time.Second,
	}
	defer tr.CloseIdleConnections()
	cl := &client{base: c.url, token: c.token, http: &http.Client{Transport: tr, Timeout: c.timeout}}

	w, err := setup(ctx, cl, c)
	if err != nil {
		return fail(fmt.Errorf("seeding: %w", err))
	}
	fmt.Printf("seeded %d courses, %d users; %d clients for %s (bulk share %.0f%%, %d identifiers a request)\n\n",
		len(w.courses), len(w.users), c.clients, c.duration, c.bulkShare*100, c.bulkSize)

	// Clients start no request after the deadline; the ones in flight finish (and count), so
	// the stack never sees a client vanish mid-request. Ctrl-C cancels everything at once.
	res := newResults()
	start := time.Now()
	deadline := start.Add(c.duration)
	var wg sync.WaitGroup
	for i := range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(c.seed, uint64(i)))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				kind, req := w.next(rng, c)
				t0 := time.Now()
				status, body, err := cl.do(ctx, req)
				if err != nil && ctx.Err() != nil {
					return // interrupted: not a result
				}
				res.add(kind, time.Since(t0), status, body, err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "load: interrupted; partial results")
	}
	elapsed := time.Since(start)
	status := res.print(os.Stdout, elapsed)
	tally.print(os.Stdout)
	return status
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "load:", err)
	return 1
}

// loopbackOnly refuses a target that is not on this machine's loopback.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: the load only targets loopback addresses (127.0.0.0/8, ::1, localhost)", raw)
}

// ---------------------------------------------------------------------------------------------
// The workload

type workload struct {
	courses []string
	users   []string // registered usernames
	emails  []string // unregistered learners
}

// request is one HTTP request of the load.
type request struct {
	method, path string
	body         []byte
}

func setup(ctx context.Context, cl *client, c config) (*workload, error) {
	w := &workload{}
	for i := range c.courses {
		id := fmt.Sprintf("course-v1:Load+C%02d+2026", i)
		status, body, err := cl.do(ctx, request{method: "PUT", path: "/api/courses/" + url.PathEscape(id),
			body: mustJSON(map[string]any{"title": fmt.Sprintf("Load course %d", i), "cohorts": []string{"a", "b"}})})
		if err != nil {
			return nil, err
		}
		if status != http.StatusCreated && status != http.StatusOK {
			return nil, fmt.Errorf("PUT course %s: %d %s", id, status, body)
		}
		w.courses = append(w.courses, id)
	}
	for i := range c.users {
		u := fmt.Sprintf("learner%03d", i)
		status, body, err := cl.do(ctx, request{method: "POST", path: "/api/users",
			body: mustJSON(map[string]any{"username": u, "email": u + "@load.example.com"})})
		if err != nil {
			return nil, err
		}
		if status != http.StatusCreated && status != http.StatusConflict { // 409: a rerun against -url
			return nil, fmt.Errorf("POST user %s: %d %s", u, status, body)
		}
		w.users = append(w.users, u)
	}
	for i := range c.emails {
		w.emails = append(w.emails, fmt.Sprintf("invitee%04d@load.example.com", i))
	}
	// Something to list from the first request on: every user in the first course.
	for chunk := range slices.Chunk(w.users, 50) {
		status, body, err := cl.do(ctx, request{method: "POST", path: "/api/bulk_enroll/v1/bulk_enroll/",
			body: mustJSON(map[string]any{"action": "enroll", "courses": w.courses[0], "identifiers": chunk})})
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("seed bulk enroll: %d %s", status, body)
		}
	}
	return w, nil
}

// next picks the next request of a client.
func (w *workload) next(rng *rand.Rand, c config) (string, request) {
	if rng.Float64() < c.bulkShare {
		return "bulk_enroll", w.bulk(rng, c)
	}
	course := w.courses[rng.IntN(len(w.courses))]
	switch rng.IntN(3) {
	case 0:
		return "so2_list", request{method: "GET", path: "/api/so2/v1/enrollments?" + url.Values{"course_id": {course}, "page_size": {"50"}}.Encode()}
	case 1:
		// Half of the course lists filter by state (GSI4), as an admin's view of open
		// invitations or active learners does.
		q := url.Values{"page_size": {"50"}}
		if rng.IntN(2) == 0 {
			q.Set("state", []string{"invited", "active", "unenrolled"}[rng.IntN(3)])
		}
		return "course_list", request{method: "GET", path: "/api/courses/" + url.PathEscape(course) + "/enrollments?" + q.Encode()}
	default:
		u := w.users[rng.IntN(len(w.users))]
		return "user_list", request{method: "GET", path: "/api/users/" + url.PathEscape(u) + "/enrollments"}
	}
}

// bulk is a small bulk enroll: bulkSize learners drawn from a shared pool (so concurrent
// requests overlap), into one or two courses, sometimes an unenroll, sometimes with cohorts.
func (w *workload) bulk(rng *rand.Rand, c config) request {
	ids := make([]string, c.bulkSize)
	for i := range ids {
		if rng.IntN(2) == 0 {
			ids[i] = w.users[rng.IntN(len(w.users))]
		} else {
			ids[i] = w.emails[rng.IntN(len(w.emails))]
		}
	}
	courses := []string{w.courses[rng.IntN(len(w.courses))]}
	if rng.IntN(3) == 0 && len(w.courses) > 1 {
		other := w.courses[rng.IntN(len(w.courses))]
		if other != courses[0] {
			courses = append(courses, other)
		}
	}
	body := map[string]any{"action": "enroll", "courses": courses, "identifiers": ids,
		"auto_enroll": rng.IntN(2) == 0, "reason": "make load"}
	if rng.Float64() < c.unenroll {
		body["action"] = "unenroll"
	} else if rng.IntN(4) == 0 {
		cohorts := make([]string, len(courses))
		for i := range cohorts {
			cohorts[i] = []string{"a", "b"}[rng.IntN(2)]
		}
		body["cohorts"] = cohorts
	}
	return request{method: "POST", path: "/api/bulk_enroll/v1/bulk_enroll/", body: mustJSON(body)}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ---------------------------------------------------------------------------------------------
// HTTP

type client struct {
	base, token string
	http        *http.Client
}

func (c *client) do(ctx context.Context, r request) (int, []byte, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// ---------------------------------------------------------------------------------------------
// Results

type kindResults struct {
	latencies []time.Duration
	errors    int
	statuses  map[int]int
}

type results struct {
	mu      sync.Mutex
	byKind  map[string]*kindResults
	samples map[string]string // distinct error -> first body
}

func newResults() *results {
	r := &results{byKind: map[string]*kindResults{}, samples: map[string]string{}}
	for _, k := range kinds {
		r.byKind[k] = &kindResults{statuses: map[int]int{}}
	}
	return r
}

func (r *results) add(kind string, d time.Duration, status int, body []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.byKind[kind]
	k.latencies = append(k.latencies, d)
	k.statuses[status]++
	if err == nil && status == http.StatusOK {
		return
	}
	k.errors++
	key := fmt.Sprintf("%s %d", kind, status)
	detail := strings.TrimSpace(string(body))
	if err != nil {
		key = kind + " " + err.Error()
		detail = err.Error()
	}
	if len(detail) > 300 {
		detail = detail[:300] + "..."
	}
	if _, ok := r.samples[key]; !ok && len(r.samples) < 20 {
		r.samples[key] = detail
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// print writes the table and returns the exit status.
func (r *results) print(out io.Writer, elapsed time.Duration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\treq/s\terrors\tp50 ms\tp90 ms\tp99 ms\tmax ms\tstatuses\t")
	total, totalErr := 0, 0
	for _, name := range kinds {
		k := r.byKind[name]
		ds := slices.Clone(k.latencies)
		slices.Sort(ds)
		var sts []string
		codes := make([]int, 0, len(k.statuses))
		for code := range k.statuses {
			codes = append(codes, code)
		}
		sort.Ints(codes)
		for _, code := range codes {
			label := fmt.Sprint(code)
			if code == 0 {
				label = "transport"
			}
			sts = append(sts, fmt.Sprintf("%s:%d", label, k.statuses[code]))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, len(ds), float64(len(ds))/elapsed.Seconds(), k.errors,
			ms(pct(ds, 0.50)), ms(pct(ds, 0.90)), ms(pct(ds, 0.99)), ms(pct(ds, 1)), strings.Join(sts, " "))
		total += len(ds)
		totalErr += k.errors
	}
	fmt.Fprintf(tw, "all\t%d\t%.1f\t%d\t\t\t\t\t\t\n", total, float64(total)/elapsed.Seconds(), totalErr)
	tw.Flush()
	if totalErr == 0 {
		fmt.Fprintf(out, "\nload: %d requests in %.1fs, no errors\n", total, elapsed.Seconds())
		return 0
	}
	fmt.Fprintf(out, "\nload: %d errors in %d requests; first of each kind:\n", totalErr, total)
	keys := make([]string, 0, len(r.samples))
	for k := range r.samples {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %s: %s\n", k, r.samples[k])
	}
	return 1
}
