package app_test

// Faults and concurrency against real DynamoDB Local: a store outage in the middle of a bulk
// request, and twenty concurrent bulk requests that must end in a state some serial order of
// them explains.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/testenv"
)

// ownDynamoDB starts a DynamoDB Local of this test's own, persisted on disk, so that the test
// can stop and restart it; it returns the endpoint and a restart function.
func ownDynamoDB(t *testing.T) (endpoint string, stop func(), restart func()) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs its own DynamoDB Local")
	}
	dir := t.TempDir()
	port, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := localstack.DynamoDBOptions{Port: port, DataDir: dir}
	svc, err := localstack.StartDynamoDBLocal(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if svc != nil {
			svc.Stop()
		}
	})
	stop = func() {
		mu.Lock()
		defer mu.Unlock()
		svc.Stop()
		svc = nil
	}
	restart = func() {
		mu.Lock()
		defer mu.Unlock()
		s, err := localstack.StartDynamoDBLocal(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		svc = s
	}
	return svc.Endpoint, stop, restart
}

func TestStoreOutageMidRequestThenRetry(t *testing.T) {
	endpoint, stop, restart := ownDynamoDB(t)
	tpl, err := samtemplate.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	if err := localstack.EnsureTable(context.Background(), localstack.NewDynamoDBClient(endpoint), tpl, "rollcall-faults"); err != nil {
		t.Fatal(err)
	}
	services := testenv.Start(t)
	f := &fixture{env: newEnvOn(t, endpoint, services.SESEndpoint, "rollcall-faults", "BulkEnrollFunction", "AdminFunction")}
	f.staff = token(t, "Bob", true)
	mustStatus(t, f.do("PUT", "/api/courses/"+courseKey, f.staff, map[string]any{"title": "Demo"}, ""), http.StatusCreated)

	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("outage%04d@example.com", i)
	}
	body, _ := json.Marshal(map[string]any{"identifiers": ids, "action": "enroll", "email_students": true, "courses": courseKey})
	// Each attempt runs under a deadline, as a Lambda invocation does: the attempt that the
	// outage stopped could not release its Idempotency-Key reservation (nor its course lease),
	// so both lapse shortly after its deadline, and until then a retry is told 409.
	// (A retry gets longer: DynamoDB Local is slow for a while after its restart.)
	const attemptTimeout = 20 * time.Second
	timeout := attemptTimeout
	send := func() response {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req := f.request("POST", bulkPaths[0], f.staff, body, "application/json").WithContext(ctx)
		req.Header.Set("Idempotency-Key", "outage-1")
		return f.serve(req)
	}

	// Stop DynamoDB Local once the request has started writing.
	m0 := f.deps.Store.Metrics.Snapshot()
	done := make(chan response)
	go func() { done <- send() }()
	deadline := time.Now().Add(20 * time.Second)
	for f.deps.Store.Metrics.Snapshot().Sub(m0).TableWriteUnits < 25 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	r := <-done
	mustStatus(t, r, http.StatusServiceUnavailable)
	var d map[string]any
	if err := json.Unmarshal(r.Body, &d); err != nil || len(d) != 1 || d["detail"] == "" || strings.Contains(string(r.Body), "goroutine") {
		t.Fatalf("503 body %s", r.Body)
	}
	written := f.deps.Store.Metrics.Snapshot().Sub(m0).TableWriteUnits
	t.Logf("outage after %.0f write units", written)

	// After a restart the same request completes, and nothing is applied twice.
	restart()
	timeout = 2 * time.Minute
	retryUntil := time.Now().Add(4 * time.Minute)
	// A client retries a 409 (the lapsing reservation) and a 503 (DynamoDB Local can still be
	// too slow to answer in time on a busy machine), as the error bodies tell it to.
	for r = send(); (r.Status == http.StatusConflict || r.Status == http.StatusServiceUnavailable) && time.Now().Before(retryUntil); r = send() {
		if r.Status == http.StatusConflict && r.Header.Get("Retry-After") == "" {
			t.Fatalf("409 without Retry-After")
		}
		time.Sleep(500 * time.Millisecond)
	}
	mustStatus(t, r, http.StatusOK)
	res := bulkResults(t, r, courseKey)
	if len(res) != len(ids) {
		t.Fatalf("%d results", len(res))
	}
	enrollmentIDs := make([]string, len(ids))
	for i, id := range ids {
		enrollmentIDs[i] = rollcall.EnrollmentID(courseKey, id)
	}
	stored, err := f.deps.Store.GetEnrollments(context.Background(), enrollmentIDs)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(ids) {
		t.Fatalf("%d of %d enrollments stored", len(stored), len(ids))
	}
	for _, e := range stored {
		// One change, one audit record (the item's last change), one mail owed.
		if e.State != rollcall.StateInvited || e.Version != 1 || e.MailSeq != 1 {
			t.Fatalf("applied twice or not at all: %+v", e)
		}
	}
	// And the retry of the retry is a replay.
	if again := send(); again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("second retry: %d %v", again.Status, again.Header)
	}
}

// recordingStore is the real DynamoDB store, recording the order in which bulk requests
// obtained their leases or committed: the serial order the test then replays.
type recordingStore struct {
	*dynamo.Store
	mu    sync.Mutex
	order []string // request ids, in lease or commit order

	commitMu sync.Mutex // one commit at a time, so that the recorded order is the commit order
}

type reqIDKey struct{}

func (s *recordingStore) LockCourses(ctx context.Context, courses []string, owner string, ttl, wait time.Duration) (func(context.Context), error) {
	unlock, err := s.Store.LockCourses(ctx, courses, owner, ttl, wait)
	if err == nil {
		s.mu.Lock()
		s.order = append(s.order, ctx.Value(reqIDKey{}).(string))
		s.mu.Unlock()
	}
	return unlock, err
}

// CommitEnrollments records a small request's successful commit. Only the commits take
// turns: each request still reads and decides concurrently with the others, so a stale
// read must still be caught by the store.
func (s *recordingStore) CommitEnrollments(ctx context.Context, courses []string, read map[string]int64, es []*rollcall.Enrollment) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	err := s.Store.CommitEnrollments(ctx, courses, read, es)
	if err == nil {
		s.mu.Lock()
		s.order = append(s.order, ctx.Value(reqIDKey{}).(string))
		s.mu.Unlock()
	}
	return err
}

// Twenty concurrent bulk requests end in a state some serial order explains, both when
// they commit optimistically (small requests, the default) and when they take leases.
func TestTwentyConcurrentBulkRequestsAreSerializable(t *testing.T) {
	t.Run("commit", func(t *testing.T) { testTwentyConcurrentBulkRequests(t, false) })
	t.Run("lease", func(t *testing.T) { testTwentyConcurrentBulkRequests(t, true) })
}

func testTwentyConcurrentBulkRequests(t *testing.T, alwaysLease bool) {
	courses := []string{"course-v1:Con+A+1", "course-v1:Con+B+1", "course-v1:Con+C+1"}
	cohorts := make([]string, 20)
	for i := range cohorts {
		cohorts[i] = fmt.Sprintf("c%02d", i)
	}
	setup := func() (*env, *recordingStore) {
		e := newEnv(t, "BulkEnrollFunction", "AdminFunction")
		staff := token(t, "Bob", true)
		for _, c := range courses {
			mustStatus(t, e.do("PUT", "/api/courses/"+c, staff, map[string]any{"title": c, "cohorts": cohorts}, ""), http.StatusCreated)
		}
		for i := 0; i < 6; i++ {
			mustStatus(t, e.do("POST", "/api/users", staff, map[string]any{"username": fmt.Sprintf("user%d", i), "email": fmt.Sprintf("user%d@example.com", i)}, ""), http.StatusCreated)
		}
		// The own learner of each unenroll request starts enrolled, so that every request
		// changes something and takes its leases.
		var own []string
		for i := 3; i < 20; i += 4 {
			own = append(own, fmt.Sprintf("own%02d@example.com", i))
		}
		mustStatus(t, e.do("POST", bulkPaths[0], staff, map[string]any{"identifiers": own, "courses": courses, "action": "enroll"}, ""), http.StatusOK)
		rs := &recordingStore{Store: e.deps.Store}
		e.deps.Service.Store = rs
		if alwaysLease {
			e.deps.Service.CommitLimit = 1 // every request takes the leases
		}
		return e, rs
	}

	// Twenty requests over overlapping learners (registered and not) and courses; each has a
	// learner of its own so that it always changes something and takes its leases.
	rng := rand.New(rand.NewPCG(1, 2))
	people := []string{"user0", "user1", "user2", "user3@example.com", "user4", "user5@example.com", "ann@example.com", "bo@example.com", "cy@example.com"}
	type request struct {
		id   string
		body map[string]any
	}
	reqs := make([]request, 20)
	for i := range reqs {
		n := 2 + rng.IntN(5)
		idents := []string{fmt.Sprintf("own%02d@example.com", i)}
		for _, k := range rng.Perm(len(people))[:n] {
			idents = append(idents, people[k])
		}
		cs := courses[:1+rng.IntN(3)]
		body := map[string]any{"identifiers": idents, "courses": cs, "action": "enroll"}
		if i%4 == 3 {
			body["action"] = "unenroll"
		} else {
			var cc []string
			for range cs {
				cc = append(cc, cohorts[i])
			}
			body["cohorts"] = cc
			body["auto_enroll"] = i%2 == 0
		}
		reqs[i] = request{id: fmt.Sprintf("r%02d", i), body: body}
	}

	send := func(e *env, staff string, r request) response {
		req := e.request("POST", bulkPaths[0], staff, r.body, "")
		return e.serve(req.WithContext(context.WithValue(req.Context(), reqIDKey{}, r.id)))
	}

	// Concurrently.
	conc, rec := setup()
	staff := token(t, "Bob", true)
	got := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := send(conc, staff, r)
			if resp.Status != http.StatusOK {
				t.Errorf("%s: %d %s", r.id, resp.Status, resp.Body)
			}
			mu.Lock()
			got[r.id] = resp.Body
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(rec.order) != len(reqs) {
		t.Fatalf("the recorded order has %d of %d requests", len(rec.order), len(reqs))
	}

	// Serially, in the recorded order, on a fresh table: every response and the final state match.
	ser, _ := setup()
	byID := map[string]request{}
	for _, r := range reqs {
		byID[r.id] = r
	}
	for _, id := range rec.order {
		resp := send(ser, staff, byID[id])
		mustStatus(t, resp, http.StatusOK)
		jsonEqual(t, got[id], string(resp.Body))
	}
	final := func(e *env) []string {
		var out []string
		for _, c := range courses {
			for _, p := range append(people, func() []string {
				var own []string
				for i := range reqs {
					own = append(own, fmt.Sprintf("own%02d@example.com", i))
				}
				return own
			}()...) {
				email := p
				if !strings.Contains(p, "@") {
					email = p + "@example.com"
				}
				en, err := e.deps.Store.GetEnrollment(context.Background(), rollcall.EnrollmentID(c, email))
				if err != nil {
					continue
				}
				out = append(out, fmt.Sprintf("%s %s %s %s %v %d", c, email, en.State, en.Cohort, en.AutoEnroll, en.Version))
			}
		}
		sort.Strings(out)
		return out
	}
	a, b := final(conc), final(ser)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("final states differ:\nconcurrent:\n%s\nserial:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	t.Logf("%d requests serialized in the order %v; %d enrollments agree", len(reqs), rec.order, len(a))
}
