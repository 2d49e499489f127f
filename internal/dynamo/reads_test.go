package dynamo_test

import (
	"context"
	"testing"
)

// BatchGetItem refuses a call that names a key twice; the store's batched reads take
// repeated ids (a roster that lists someone twice) and read each key once.
func TestBatchReadsTakeRepeatedKeys(t *testing.T) {
	ctx := context.Background()
	course := "course-v1:Org+Repeat+2026"
	es := genEnrollments(course, 3, t0, 0, nil)
	s, _, _ := newStore(t, es)
	cs, err := s.GetCourses(ctx, []string{course, course})
	if err != nil || len(cs) != 1 || cs[course] == nil {
		t.Fatalf("courses: %v %v", cs, err)
	}
	ids := []string{es[0].ID, es[1].ID, es[0].ID, es[2].ID, es[1].ID}
	before := s.Metrics.Snapshot()
	got, err := s.GetEnrollments(ctx, ids)
	if err != nil || len(got) != 3 {
		t.Fatalf("enrollments: %d %v", len(got), err)
	}
	if m := s.Metrics.Snapshot().Sub(before); m.Requests != 1 {
		t.Fatalf("%d requests for 3 keys", m.Requests)
	}
	users, err := s.ResolveIdentifiers(ctx, []string{"nobody@example.com", "NOBODY@example.com", "nobody"})
	if err != nil || len(users) != 0 {
		t.Fatalf("identifiers: %v %v", users, err)
	}
}
