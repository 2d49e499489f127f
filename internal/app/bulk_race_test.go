package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// registeringStore is the real store; just before the first bulk write it registers a user
// (through the service, as POST /api/users does), so the registration's own look for open
// invitations runs before the bulk request's invitation exists: only the bulk request's
// check after its write can convert it.
type registeringStore struct {
	*dynamo.Store
	once     sync.Once
	register func() error
	err      error
}

func (s *registeringStore) PutEnrollments(ctx context.Context, es []*rollcall.Enrollment) (map[string]error, error) {
	s.once.Do(func() { s.err = s.register() })
	return s.Store.PutEnrollments(ctx, es)
}

func (s *registeringStore) CommitEnrollments(ctx context.Context, courses []string, read map[string]int64, es []*rollcall.Enrollment) error {
	s.once.Do(func() { s.err = s.register() })
	return s.Store.CommitEnrollments(ctx, courses, read, es)
}

func TestBulkInviteRacingRegistration(t *testing.T) {
	for _, tc := range []struct {
		n           int
		alwaysLease bool
	}{
		{1, false},  // a small request: the optimistic commit
		{1, true},   // the lease, locked before reading (the sample has a change)
		{60, false}, // a large request: the lease, locked before reading
	} {
		t.Run(fmt.Sprintf("%d-lease=%v", tc.n, tc.alwaysLease), func(t *testing.T) {
			n := tc.n
			f := newFixture(t)
			if tc.alwaysLease {
				f.deps.Service.CommitLimit = 1 // every request takes the leases
			}
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("racer%02d@example.com", i)
			}
			racer := ids[n-1]
			rs := &registeringStore{Store: f.deps.Store}
			rs.register = func() error {
				_, err := f.deps.Service.CreateUser(context.Background(), rollcall.Actor{Username: "Bob", Staff: true},
					rollcall.UserInput{Username: ptr("racer"), Email: ptr(racer)})
				return err
			}
			f.deps.Service.Store = rs
			r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": ids, "action": "enroll", "auto_enroll": true, "courses": courseKey}, true)
			mustStatus(t, r, http.StatusOK)
			if rs.err != nil {
				t.Fatalf("registration: %v", rs.err)
			}
			if e := f.enrollment(t, courseKey, racer); e.State != rollcall.StateActive || e.Username != "racer" {
				t.Fatalf("the racing registration's invitation: %+v", e)
			}
			if e := f.enrollment(t, courseKey, ids[0]); n > 1 && (e.State != rollcall.StateInvited || e.Username != "") {
				t.Fatalf("another invitation: %+v", e)
			}
		})
	}
}

// A request whose first identifiers change nothing reads without a lease first, then locks
// and re-reads: its results must be those of the states under the lease.
func TestBulkUnchangedSampleThenChanges(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, fmt.Sprintf("early%02d@example.com", i))
	}
	mustStatus(t, f.bulk(t, bulkPaths[0], map[string]any{"identifiers": ids, "action": "enroll", "courses": courseKey}, true), http.StatusOK)
	all := append(append([]string(nil), ids...), "late01@example.com", "late02@example.com")
	m0 := f.deps.Store.Metrics.Snapshot()
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": all, "action": "enroll", "courses": courseKey}, true)
	mustStatus(t, r, http.StatusOK)
	m := f.deps.Store.Metrics.Snapshot().Sub(m0)
	for _, id := range []string{"late01@example.com", "late02@example.com", "early00@example.com"} {
		if e := f.enrollment(t, courseKey, id); e.State != rollcall.StateInvited {
			t.Fatalf("%s: %+v", id, e)
		}
	}
	if m.TableWriteUnits > 11 { // 2 items, the lease's 4 items (taken and released), the seq counter
		t.Fatalf("wrote %.1f table units for 2 changes", m.TableWriteUnits)
	}
}

func ptr(s string) *string { return &s }

// Registrations count themselves on shared counters in their transactions; concurrent ones
// that meet on a counter retry instead of failing.
func TestConcurrentRegistrations(t *testing.T) {
	f := newFixture(t)
	mark, err := f.deps.Store.RegistrationMark(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make([]int, 40)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = f.do("POST", "/api/users", f.staff, map[string]any{"username": fmt.Sprintf("new%02d", i), "email": fmt.Sprintf("new%02d@example.com", i)}, "").Status
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusCreated {
			t.Errorf("registration %d: %d", i, c)
		}
	}
	after, err := f.deps.Store.RegistrationMark(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after == mark {
		t.Errorf("mark unchanged after 40 registrations: %s", after)
	}
	// A refused registration (taken username) counts nothing.
	mustStatus(t, f.do("POST", "/api/users", f.staff, map[string]any{"username": "new00", "email": "other@example.com"}, ""), http.StatusConflict)
	if again, _ := f.deps.Store.RegistrationMark(context.Background()); again != after {
		t.Errorf("mark moved on a refused registration: %s -> %s", after, again)
	}
}

// A bulk request that waits for a course another request holds gives up before the
// invocation's deadline (less the margin) with its own 503 body, not a gateway timeout.
func TestBulkWaitEndsBeforeTheDeadline(t *testing.T) {
	f := newFixture(t)
	// The margin leaves room for a busy machine: the request gives up about 6 s in, and must
	// answer before the 10 s deadline.
	f.deps.Service.DeadlineMargin = 4 * time.Second
	unlock, err := f.deps.Store.LockCourses(context.Background(), []string{courseKey}, "another-request", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids := make([]string, 60) // large: goes through the course lease
	for i := range ids {
		ids[i] = fmt.Sprintf("waiter%02d@example.com", i)
	}
	req := f.request("POST", bulkPaths[0], f.staff, map[string]any{"identifiers": ids, "action": "enroll", "courses": courseKey}, "")
	start := time.Now()
	r := f.serve(req.WithContext(ctx))
	took := time.Since(start)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), `"detail"`) {
		t.Fatalf("status %d %s, want 503 with a detail", r.Status, r.Body)
	}
	if ctx.Err() != nil || took > 9*time.Second {
		t.Fatalf("answered after %v, at or past the deadline less the margin (ctx: %v)", took, ctx.Err())
	}
}
