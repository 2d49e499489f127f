package dynamo_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// racingStore is the real store; just before the first commit it creates one of the
// enrollments the commit read as absent, so that the commit is refused and retried.
type racingStore struct {
	*dynamo.Store
	once sync.Once
	race func() error
	err  error
}

func (s *racingStore) CommitEnrollments(ctx context.Context, courses []string, read map[string]int64, es []*rollcall.Enrollment) error {
	s.once.Do(func() { s.err = s.race() })
	return s.Store.CommitEnrollments(ctx, courses, read, es)
}

// A small bulk request whose commit is refused (another writer created one of its learners
// first) decides again and commits; the retry reuses the seqs the refused attempt reserved
// for the learners it still creates, so the course's counter is written once for them and
// counts exactly the enrollments created.
func TestSmallBulkRetryReusesSeqs(t *testing.T) {
	ctx := context.Background()
	course := "course-v1:Org+Retry+2026"
	s, db, table := newStore(t)
	if _, err := s.PutCourse(ctx, &rollcall.Course{ID: course, Title: "Retry"}); err != nil {
		t.Fatal(err)
	}
	emails := []string{"first@example.com", "second@example.com", "third@example.com"}
	rs := &racingStore{Store: s}
	rs.race = func() error {
		e := &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, emails[0]), CourseID: course, Email: emails[0],
			State: rollcall.StateActive, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode, CreatedAt: t0, UpdatedAt: t0, Version: 1}
		return s.SaveEnrollment(ctx, e, 0)
	}
	svc := &rollcall.Service{Store: rs, Keys: rollcall.NewKeyRing([]byte("retry-test-signing-secret-0123456789"))}
	f := rollcall.Fields{
		"identifiers": {Present: true, Values: emails},
		"courses":     {Present: true, Values: []string{course}},
		"action":      {Present: true, Values: []string{"enroll"}},
	}
	resp, err := svc.BulkEnroll(ctx, rollcall.Actor{Username: "staff", Staff: true}, f)
	if err != nil {
		t.Fatal(err)
	}
	if rs.err != nil {
		t.Fatal(rs.err)
	}
	if got := resp.Courses[course].Results; len(got) != 3 {
		t.Fatalf("results: %+v", got)
	}
	var seqs []int64
	for _, email := range emails {
		e, err := s.GetEnrollment(ctx, rollcall.EnrollmentID(course, email))
		if err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		seqs = append(seqs, e.Seq)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: dynamo.CoursePK(course)}, "SK": &types.AttributeValueMemberS{Value: "COURSE"}}})
	if err != nil {
		t.Fatal(err)
	}
	counter := out.Item["enr_seq"].(*types.AttributeValueMemberN).Value
	slices.Sort(seqs)
	// The racer took seq 1; the refused attempt reserved 2-4 for all three; the retry
	// creates two of them and reuses two of those seqs (one stays unused).
	if counter != "4" || seqs[0] != 1 || seqs[1] == seqs[2] || seqs[2] > 4 {
		t.Fatalf("course counter %s, seqs %v: want the counter at 4 (one reservation for the retried learners) and seqs within it", counter, seqs)
	}
}
