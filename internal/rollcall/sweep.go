package rollcall

import (
	"context"
	"sync"
	"time"
)

// The scheduled sweeps (invitation expiry, the lifecycle's due work) share one shape: list
// pages from an index, re-read each page consistently, decide and write each item with a
// version-checked write, stop starting new work at the deadline and leave the rest for the
// next run. sweepPages is that shape; each sweep supplies its listing and its per-item step.

// SweepConcurrency is how many listed pages a sweep works on at once.
const SweepConcurrency = 8

// sweepTally is what a sweep did.
type sweepTally struct {
	done                  map[MailKind]int // by the mail the work owed ("" for none)
	skipped, busy, failed int
	stopped               bool  // at the deadline or the invocation's end: the rest waits
	err                   error // the first store error (listing or reading)
}

// complete reports that the sweep saw and settled everything due.
func (t sweepTally) complete() bool {
	return t.err == nil && !t.stopped && t.busy == 0 && t.failed == 0
}

// sweepPages runs step on every item list hands over, SweepConcurrency pages at once.
func (s *Service) sweepPages(ctx context.Context, deadline time.Time,
	list func(fn func([]*Enrollment) bool) error,
	step func(*Enrollment) (MailKind, expireOutcome)) sweepTally {
	var mu sync.Mutex
	t := sweepTally{done: map[MailKind]int{}}
	stop := func() {
		mu.Lock()
		t.stopped = true
		mu.Unlock()
	}
	past := func() bool {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			stop()
			return true
		}
		return ctx.Err() != nil
	}
	sem := make(chan struct{}, SweepConcurrency)
	err := list(func(page []*Enrollment) bool {
		if past() {
			return false
		}
		sem <- struct{}{}
		defer func() { <-sem }()
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.ID
		}
		fresh, err := s.Store.GetEnrollments(ctx, ids)
		if err != nil {
			if ctx.Err() != nil {
				stop()
				return false
			}
			mu.Lock()
			t.failed += len(ids)
			if t.err == nil {
				t.err = err
			}
			mu.Unlock()
			return true
		}
		for _, id := range ids {
			if past() {
				return false
			}
			kind, r := step(fresh[id])
			mu.Lock()
			switch r {
			case expireDone:
				t.done[kind]++
			case expireSkipped:
				t.skipped++
			case expireBusy:
				t.busy++
			case expireStopped:
				t.stopped = true
			default:
				t.failed++
			}
			mu.Unlock()
			if r == expireStopped {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		// The invocation's own deadline (or a cancel): what is left waits for the next run.
		t.stopped = true
	}
	if t.err == nil {
		t.err = err
	}
	return t
}
