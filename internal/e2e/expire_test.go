package e2e

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// 1,000 open invitations past expiry, expired by the ExpireInvitationsFunction handler in runs
// with a short deadline (two at a time): every run stops early and leaves the rest, in the end
// all are expired, none twice, and the ones not yet due are left alone.
func TestExpireThousandInRuns(t *testing.T) {
	h := newHarness(t, options{noStreams: true})
	h.putCourse(course, "Expiry course")
	const n = 1000
	due := addresses("due", n)
	h.bulk("enroll", course, due, false, false)
	h.advance(10 * 24 * time.Hour)
	later := addresses("later", 20) // invited 10 days later: not due when the others are
	h.bulk("enroll", course, later, false, false)
	h.advance(5 * 24 * time.Hour) // 15 days after the first invitations

	fn, err := functions.Handler(context.Background(), "ExpireInvitationsFunction", h.functionConfig("ExpireInvitationsFunction"))
	if err != nil {
		t.Fatal(err)
	}
	expire := fn.(func(context.Context, json.RawMessage) (rollcall.ScheduledResult, error))
	event := json.RawMessage(`{"version":"0","id":"e2e","detail-type":"Scheduled Event","source":"aws.events","time":"2026-12-08T09:00:00Z","resources":[],"detail":{}}`)

	var (
		mu      sync.Mutex
		total   rollcall.ExpireResult
		runs    int
		partial int
	)
	for round := 0; round < 120; round++ {
		var wg sync.WaitGroup
		complete := false
		for range 2 { // overlapping runs, as a slow run and the next schedule could be
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
				defer cancel()
				res, err := expire(ctx, event)
				if err != nil {
					t.Errorf("run: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				runs++
				total.Expired += res.Expired
				total.Skipped += res.Skipped
				total.Busy += res.Busy
				total.Failed += res.Failed
				if res.Complete {
					complete = true
				} else {
					partial++
				}
			}()
		}
		wg.Wait()
		if complete {
			break
		}
	}
	t.Logf("%d runs (%d stopped at their deadline): %+v", runs, partial, total)
	// A write in flight when a run's context ends may land without the run learning it (so
	// the counts can fall short by a few), but no invitation may be expired twice: each must
	// be at version 2 (invited, expired), and a run reported finding nothing left.
	if total.Expired > n || total.Expired < n-rollcall.SweepConcurrency*partial {
		t.Fatalf("expired %d in total, want %d", total.Expired, n)
	}
	if partial == 0 {
		t.Errorf("no run stopped at its deadline; the test does not exercise resuming")
	}
	ids := make([]string, 0, n)
	for _, a := range due {
		ids = append(ids, rollcall.EnrollmentID(course, a))
	}
	got, err := h.deps.Store.GetEnrollments(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e := got[id]
		if e == nil || e.State != rollcall.StateExpired || e.Version != 2 || e.TokenNonce != "" || e.TokenHash == "" ||
			e.LastChange == nil || e.LastChange.Transition != rollcall.AllowedToExpired || e.LastChange.Source != rollcall.SourceExpiry {
			t.Fatalf("%s after expiry: %+v", id, e)
		}
	}
	for _, a := range later {
		if e := h.enrollment(course, a); e.State != rollcall.StateInvited || e.Version != 1 {
			t.Fatalf("not yet due %s: state %s version %d", a, e.State, e.Version)
		}
	}
	// Idempotent: another run finds nothing.
	res, err := expire(context.Background(), event)
	if err != nil || res.Expired != 0 || !res.Complete {
		t.Fatalf("repeat run: %+v, %v", res, err)
	}
}

// A course leased by a running bulk enrollment: expiry leaves its invitations for the next run.
func TestExpireSkipsLeasedCourse(t *testing.T) {
	h := newHarness(t, options{noStreams: true})
	h.putCourse(course, "Leased course")
	a := addresses("leased", 3)
	h.bulk("enroll", course, a, false, false)
	h.advance(15 * 24 * time.Hour)
	unlock, err := h.deps.Store.LockCourses(context.Background(), []string{course}, "test-holder", time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.deps.Service.ExpireDue(context.Background(), h.clock(), time.Now().Add(5*time.Second))
	if err != nil || res.Busy != 3 || res.Expired != 0 || res.Complete {
		t.Fatalf("while leased: %+v, %v", res, err)
	}
	unlock(context.Background())
	res, err = h.deps.Service.ExpireDue(context.Background(), h.clock(), time.Now().Add(5*time.Second))
	if err != nil || res.Expired != 3 || !res.Complete {
		t.Fatalf("after the lease: %+v, %v", res, err)
	}
}
