package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// CommitEnrollments against DynamoDB Local: it writes everything or nothing, refuses when
// anything it read has moved on (written or only read), and refuses while a bulk lease holds
// one of its courses, naming that course.
func TestCommitEnrollments(t *testing.T) {
	ctx := context.Background()
	a, b := "course-v1:Org+CommitA+2026", "course-v1:Org+CommitB+2026"
	s, _, _ := newStore(t)
	for _, c := range []string{a, b} {
		if _, err := s.PutCourse(ctx, &rollcall.Course{ID: c, Title: c}); err != nil {
			t.Fatal(err)
		}
	}
	enrollment := func(course, email string, version int64) *rollcall.Enrollment {
		return &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email), CourseID: course, Email: email,
			State: rollcall.StateActive, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode,
			CreatedAt: t0, UpdatedAt: t0, Version: version}
	}
	ann, bo, cy := enrollment(a, "ann@example.com", 1), enrollment(b, "bo@example.com", 1), enrollment(a, "cy@example.com", 1)
	stored := func(e *rollcall.Enrollment) int64 {
		t.Helper()
		got, err := s.GetEnrollment(ctx, e.ID)
		if errors.Is(err, rollcall.ErrNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return got.Version
	}

	// Two new enrollments in two courses, having read a third as absent.
	read := map[string]int64{ann.ID: 0, bo.ID: 0, cy.ID: 0}
	if err := s.CommitEnrollments(ctx, []string{a, b}, read, []*rollcall.Enrollment{ann, bo}); err != nil {
		t.Fatal(err)
	}
	if stored(ann) != 1 || stored(bo) != 1 || stored(cy) != 0 {
		t.Fatalf("after the first commit: %d %d %d", stored(ann), stored(bo), stored(cy))
	}
	if ann.Seq == 0 || bo.Seq == 0 {
		t.Fatalf("new enrollments not numbered: %d %d", ann.Seq, bo.Seq)
	}

	// A stale read of an item it writes: nothing is written.
	ann2, bo2 := enrollment(a, "ann@example.com", 2), enrollment(b, "bo@example.com", 2)
	ann2.Seq, bo2.Seq = ann.Seq, bo.Seq
	err := s.CommitEnrollments(ctx, []string{a, b}, map[string]int64{ann.ID: 1, bo.ID: 0}, []*rollcall.Enrollment{ann2, bo2})
	if !errors.Is(err, rollcall.ErrVersionChange) {
		t.Fatalf("stale write: %v", err)
	}
	if stored(ann) != 1 || stored(bo) != 1 {
		t.Fatalf("a refused commit wrote: %d %d", stored(ann), stored(bo))
	}

	// A stale read of an item it only read (cy has since been created): refused too.
	if err := s.CommitEnrollments(ctx, []string{a}, map[string]int64{cy.ID: 0}, []*rollcall.Enrollment{cy}); err != nil {
		t.Fatal(err)
	}
	err = s.CommitEnrollments(ctx, []string{a}, map[string]int64{ann.ID: 1, cy.ID: 0}, []*rollcall.Enrollment{ann2})
	if !errors.Is(err, rollcall.ErrVersionChange) || stored(ann) != 1 {
		t.Fatalf("stale read-only item: %v, ann at version %d", err, stored(ann))
	}

	// A leased course: busy, naming it, and nothing written; free again once released.
	unlock, err := s.LockCourses(ctx, []string{b}, "bulk-test", time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = s.CommitEnrollments(ctx, []string{a, b}, map[string]int64{ann.ID: 1, bo.ID: 1}, []*rollcall.Enrollment{ann2, bo2})
	var busy *rollcall.CourseBusyError
	if !errors.As(err, &busy) || busy.CourseID != b || !errors.Is(err, rollcall.ErrCourseBusy) {
		t.Fatalf("leased course: %v", err)
	}
	if stored(ann) != 1 {
		t.Fatal("a commit into a leased course wrote")
	}
	if err := s.AwaitCourse(ctx, b, time.Now().Add(100*time.Millisecond)); !errors.Is(err, rollcall.ErrCourseBusy) {
		t.Fatalf("await a held course: %v", err)
	}
	unlock(ctx)
	if err := s.AwaitCourse(ctx, b, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("await a released course: %v", err)
	}
	if err := s.CommitEnrollments(ctx, []string{a, b}, map[string]int64{ann.ID: 1, bo.ID: 1}, []*rollcall.Enrollment{ann2, bo2}); err != nil {
		t.Fatal(err)
	}
	if stored(ann) != 2 || stored(bo) != 2 {
		t.Fatalf("after release: %d %d", stored(ann), stored(bo))
	}

	// The service sends requests of up to SmallRequestItems this way.
	if dynamo.MaxCommitItems < rollcall.SmallRequestItems {
		t.Fatalf("a commit takes %d items, small requests have up to %d", dynamo.MaxCommitItems, rollcall.SmallRequestItems)
	}
	// Over the transaction limit, or writing what it did not read: refused before any call.
	big := map[string]int64{}
	for i := range dynamo.MaxCommitItems {
		big[rollcall.EnrollmentID(a, fmt.Sprintf("x%03d@example.com", i))] = 0
	}
	if err := s.CommitEnrollments(ctx, []string{a}, big, nil); err == nil {
		t.Fatal("a commit over the limit was accepted")
	}
	if err := s.CommitEnrollments(ctx, []string{a}, map[string]int64{}, []*rollcall.Enrollment{ann2}); err == nil {
		t.Fatal("a write of an unread enrollment was accepted")
	}
}

// A lease lapses soon after its holder's deadline, not after the whole ttl: a holder that
// crashes (here: never releases) blocks its course only until Lambda would have stopped it.
func TestLeaseEndsWithItsHolder(t *testing.T) {
	ctx := context.Background()
	course := "course-v1:Org+Crash+2026"
	s, _, _ := newStore(t)
	if _, err := s.PutCourse(ctx, &rollcall.Course{ID: course, Title: course}); err != nil {
		t.Fatal(err)
	}
	holder, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := s.LockCourses(holder, []string{course}, "crashed", time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitCourse(ctx, course, time.Now().Add(100*time.Millisecond)); !errors.Is(err, rollcall.ErrCourseBusy) {
		t.Fatalf("a fresh lease: %v", err)
	}
	// The holder's deadline is 0.2 s away and the margin 2 s; the ttl is a minute.
	if err := s.AwaitCourse(ctx, course, time.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("the lease outlived its holder's deadline: %v", err)
	}
	// Without a deadline the ttl holds.
	if _, err := s.LockCourses(ctx, []string{course}, "no-deadline", time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitCourse(ctx, course, time.Now().Add(3*time.Second)); !errors.Is(err, rollcall.ErrCourseBusy) {
		t.Fatalf("a lease with no deadline lapsed early: %v", err)
	}
}

// transactSpy records the lease items each transaction checks.
type transactSpy struct {
	dynamo.API
	mu     sync.Mutex
	leases map[string]int
}

func (s *transactSpy) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	s.mu.Lock()
	for _, st := range in.TransactItems {
		if cc := st.ConditionCheck; cc != nil {
			pk := cc.Key["PK"].(*types.AttributeValueMemberS).Value
			if strings.HasPrefix(pk, "LEASE#") {
				s.leases[pk+"|"+cc.Key["SK"].(*types.AttributeValueMemberS).Value]++
			}
		}
	}
	s.mu.Unlock()
	return s.API.TransactWriteItems(ctx, in, opts...)
}

// Small writers of one course check different items of its lease (DynamoDB cancels
// concurrent transactions that name one item, even only to check it), and a bulk lease holds
// every one of them: each commit is refused while it is held, whichever item it checks.
func TestCommitsSpreadOverTheLeaseShards(t *testing.T) {
	ctx := context.Background()
	course := "course-v1:Org+LeaseShards+2026"
	s, _, _ := newStore(t)
	if _, err := s.PutCourse(ctx, &rollcall.Course{ID: course, Title: course}); err != nil {
		t.Fatal(err)
	}
	spy := &transactSpy{API: s.DB, leases: map[string]int{}}
	s.DB = spy
	var es []*rollcall.Enrollment
	for i := range 40 {
		email := fmt.Sprintf("shard%02d@example.com", i)
		es = append(es, &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email), CourseID: course, Email: email,
			State: rollcall.StateActive, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode, CreatedAt: t0, UpdatedAt: t0, Version: 1})
	}

	unlock, err := s.LockCourses(ctx, []string{course}, "bulk-shards", time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		err := s.CommitEnrollments(ctx, []string{course}, map[string]int64{e.ID: 0}, []*rollcall.Enrollment{e})
		if !errors.Is(err, rollcall.ErrCourseBusy) {
			t.Fatalf("commit of %s while the course is leased: %v", e.Email, err)
		}
	}
	if len(spy.leases) != dynamo.LeaseShards {
		t.Fatalf("40 commits checked %d lease items (%v), want all %d", len(spy.leases), spy.leases, dynamo.LeaseShards)
	}
	unlock(ctx)
	for _, e := range es {
		if err := s.CommitEnrollments(ctx, []string{course}, map[string]int64{e.ID: 0}, []*rollcall.Enrollment{e}); err != nil {
			t.Fatalf("commit of %s after the release: %v", e.Email, err)
		}
	}
	for k, n := range spy.leases {
		if n > 2*40*2/dynamo.LeaseShards {
			t.Errorf("lease item %s checked by %d of 80 commits", k, n)
		}
	}
}
