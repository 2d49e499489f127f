package dynamo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Waiting behind a long holder polls the lease about ten times a second, not a hundred: the
// reads of writers queued on a course (a roster job's chunks) would otherwise compete with
// the holder's writes. A lease released while waited on is seen within a poll.
func TestAwaitLeaseBacksOffBehindALongHolder(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	course := "course-v1:Lease+Wait+2026"
	unlock, err := s.LockCourses(ctx, []string{course}, "long-holder", time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Count the polls of the second half of a 2 s wait.
	half := make(chan int64, 1)
	go func() {
		time.Sleep(time.Second)
		half <- s.Metrics.Snapshot().Requests
	}()
	start := time.Now()
	if err := s.AwaitCourse(ctx, course, start.Add(2*time.Second)); !errors.Is(err, rollcall.ErrCourseBusy) {
		t.Fatalf("await a held course: %v", err)
	}
	polls := s.Metrics.Snapshot().Requests - <-half
	// 50-150 ms pauses: about 10 polls in that second. At a steady 5-15 ms it would be 25
	// or more even with 30 ms reads.
	t.Logf("%d polls in the second half of a 2 s wait", polls)
	if polls > 16 || polls < 3 {
		t.Errorf("%d polls in the second second of a wait, want 3-16", polls)
	}
	go func() {
		time.Sleep(time.Second)
		unlock(context.Background())
	}()
	start = time.Now()
	if err := s.AwaitCourse(ctx, course, start.Add(10*time.Second)); err != nil {
		t.Fatalf("await a released course: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("released after 1 s, seen after %v", waited)
	}
}
