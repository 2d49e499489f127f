package dynamo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

// Eight people in one job chunk retire at once: each retirement rewrites the same chunk item,
// and the conditional put on its rewrite version makes every rewrite land (none overwrites
// another's). Their pointers are gone afterwards, a repeat rewrites nothing, and the person
// who did not retire is untouched.
func TestRetireJobResultsConcurrently(t *testing.T) {
	db, table := testenv.NewTable(t, localstack.WithoutStream())
	s := dynamo.New(db, table)
	ctx := context.Background()
	const n = 8
	job := &rollcall.Job{ID: rollcall.NewJobID(), State: rollcall.JobRunning, Format: rollcall.JobFormatFields,
		CreatedBy: "staff", Staff: true, CreatedAt: time.Now(), Chunks: 1, Counts: rollcall.JobCounts{Total: n + 2}}
	if err := s.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	from := func(i int) rollcall.Person {
		return rollcall.Person{Username: fmt.Sprintf("Person%d", i), Email: fmt.Sprintf("person%d@example.com", i)}
	}
	to := func(i int) rollcall.Person {
		return rollcall.Person{Username: fmt.Sprintf("retired__user_%d", i), Email: fmt.Sprintf("retired__user_%d@retired.invalid", i)}
	}
	var results []rollcall.RowResult
	for i := range n {
		// Even people by username, odd ones by email in upper case.
		ident := from(i).Username
		if i%2 == 1 {
			ident = fmt.Sprintf("PERSON%d@EXAMPLE.COM", i)
		}
		results = append(results, rollcall.RowResult{Row: i + 1, CourseID: "course-v1:A+B+C", Identifier: ident,
			After: rollcall.Snapshot{Enrollment: true, User: true}})
	}
	results = append(results,
		rollcall.RowResult{Row: n + 1, CourseID: "course-v1:A+B+C", Identifier: "stays@example.com", After: rollcall.Snapshot{Allowed: true}},
		rollcall.RowResult{Row: n + 2, CourseID: "course-v1:A+B+C", Identifier: "person0", Error: "person0 cannot be enrolled"})
	idents := make([]string, len(results))
	for i, r := range results {
		idents[i] = r.Identifier
	}
	if err := s.WriteJobRefs(ctx, job.ID, 0, idents); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RecordChunk(ctx, job.ID, 0, results, rollcall.JobCounts{Processed: n + 2, Changed: n + 1, Errors: 1}); err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.RetirePerson(ctx, from(i), to(i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("retire %d: %v", i, err)
		}
	}

	crs, err := s.JobResults(ctx, job.ID, 0, 1)
	if err != nil || len(crs) != 1 {
		t.Fatalf("results: %v %v", crs, err)
	}
	got := crs[0].Results
	for i := range n {
		want := to(i).Username
		if i%2 == 1 {
			want = to(i).Email
		}
		if got[i].Identifier != want || !got[i].After.Enrollment {
			t.Errorf("row %d = %+v, want identifier %s", i+1, got[i], want)
		}
	}
	if got[n].Identifier != "stays@example.com" {
		t.Errorf("an unretired row changed: %+v", got[n])
	}
	if got[n+1].Identifier != to(0).Username || got[n+1].Error != to(0).Username+" cannot be enrolled" {
		t.Errorf("the error row of a retired person = %+v", got[n+1])
	}
	for i := range n {
		for _, ident := range []string{from(i).Username, from(i).Email} {
			out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &table, KeyConditionExpression: aws.String("PK = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: dynamo.JobRefPK(ident)}}})
			if err != nil || len(out.Items) != 0 {
				t.Errorf("pointers of %s left: %v %v", ident, out.Items, err)
			}
		}
	}
	// The person who stays keeps their pointer.
	out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &table, KeyConditionExpression: aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: dynamo.JobRefPK("Stays@example.com")}}})
	if err != nil || len(out.Items) != 1 {
		t.Errorf("the pointer of a person who stays: %v %v", out.Items, err)
	}
	if c, err := s.RetirePerson(ctx, from(0), to(0)); err != nil || c.JobChunks != 0 {
		t.Errorf("a repeat rewrote %d chunks (%v)", c.JobChunks, err)
	}
}
