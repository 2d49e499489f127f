package dynamo_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

// Two mailer instances (two stores, as two Lambda invocations) share one send rate: no second
// carries more than the rate, whatever each of them asks for.
func TestSendRateHoldsAcrossTwoSenders(t *testing.T) {
	db, table := testenv.NewTable(t, localstack.WithoutStream())
	const rate, per, calls = 20, 7, 6 // 2 x 6 x 7 = 84 messages: at least 5 seconds' worth
	type call struct {
		at time.Time
		n  int
	}
	var (
		mu  sync.Mutex
		log []call
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &dynamo.SendRate{Store: dynamo.New(db, table), Rate: rate}
			for range calls {
				if err := r.Wait(context.Background(), per); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				log = append(log, call{time.Now(), per})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// The counters in the table: every second within the rate, all calls counted.
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, it := range out.Items {
		n, _ := strconv.Atoi(it["n"].(*types.AttributeValueMemberN).Value)
		if n > rate {
			t.Errorf("%s carried %d messages, rate %d", it["PK"].(*types.AttributeValueMemberS).Value, n, rate)
		}
		total += n
	}
	if total != 2*calls*per {
		t.Errorf("counted %d messages, sent %d", total, 2*calls*per)
	}
	// As the callers saw it, the run took at least as long as the rate allows. (Per wall-clock
	// second it cannot be checked: a caller granted a slot in one second may run on in the next
	// on a busy machine; the counters above are what the senders share.)
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("%d messages at %d/s took only %v", 2*calls*per, rate, d)
	}
}

// A call of more messages than a second carries (50 destinations at 20 a second) is reserved
// over consecutive seconds: it goes once 3 seconds' counters hold it, none over the rate.
func TestSendRateSpreadsALargeCall(t *testing.T) {
	db, table := testenv.NewTable(t, localstack.WithoutStream())
	const rate, n = 20, 50
	r := &dynamo.SendRate{Store: dynamo.New(db, table), Rate: rate}
	start := time.Now()
	if err := r.Wait(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("%d messages at %d/s were let through after %v: 3 seconds' budget needs at least 2 s", n, rate, d)
	}
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, it := range out.Items {
		c, _ := strconv.Atoi(it["n"].(*types.AttributeValueMemberN).Value)
		if c > rate {
			t.Errorf("a second carried %d messages, rate %d", c, rate)
		}
		total += c
	}
	if total != n || len(out.Items) < 3 {
		t.Errorf("counted %d messages in %d seconds, want %d in at least 3", total, len(out.Items), n)
	}
}

// Only an enrollment that owes mail is in the owed-mail index; the sweep's query finds it once
// it is old enough, and clearing it only works for the mail it names.
func TestOwedMailIndex(t *testing.T) {
	ctx := context.Background()
	course := "course-v1:Org+Owed+2026"
	s, db, table := newStore(t)
	ensureCourses(t, s, []*rollcall.Enrollment{{CourseID: course}})
	mk := func(email string, owed bool) *rollcall.Enrollment {
		e := &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email), CourseID: course, Email: email,
			State: rollcall.StateActive, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode,
			CreatedAt: t0, UpdatedAt: t0, Version: 1, MailKind: rollcall.MailEnrolled, MailSeq: 1}
		if owed {
			e.MailOwedAt = t0
		}
		return e
	}
	owed, quiet := mk("owed@example.com", true), mk("quiet@example.com", false)
	if failed, err := s.PutEnrollments(ctx, []*rollcall.Enrollment{owed, quiet}); err != nil || len(failed) > 0 {
		t.Fatal(err, failed)
	}
	later := t0.Add(time.Minute) // owed later: found only with a later bound, in pages
	var many []*rollcall.Enrollment
	for i := range 40 {
		e := mk(fmt.Sprintf("many%02d@example.com", i), true)
		e.MailOwedAt = later
		many = append(many, e)
	}
	if failed, err := s.PutEnrollments(ctx, many); err != nil || len(failed) > 0 {
		t.Fatal(err, failed)
	}
	pk, sk := dynamo.EnrollmentKey(quiet.ID)
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"GSI5PK", "GSI5SK", "mail_owed_at"} {
		if _, ok := got.Item[a]; ok {
			t.Errorf("an enrollment that owes no mail has %s", a)
		}
	}
	find := func(before time.Time) []string {
		var ids []string
		for shard := range dynamo.Shards {
			for from := ""; ; {
				got, jobs, next, err := s.OwedMail(ctx, shard, from, before, 2)
				if err != nil || len(jobs) != 0 {
					t.Fatal(jobs, err)
				}
				ids = append(ids, got...)
				if next == "" {
					break
				}
				from = next
			}
		}
		return ids
	}
	if ids := find(t0); len(ids) != 0 {
		t.Errorf("owed since t0, found with before=t0: %v", ids)
	}
	if ids := find(t0.Add(time.Second)); len(ids) != 1 || ids[0] != owed.ID {
		t.Fatalf("owed = %v, want [%s]", ids, owed.ID)
	}
	seen := map[string]int{}
	for _, id := range find(later.Add(time.Second)) {
		seen[id]++
	}
	if len(seen) != 41 {
		t.Errorf("paged through %d owed enrollments, want 41", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", id, n)
		}
	}
	for _, e := range many {
		if _, err := s.ClearMailOwed(ctx, []dynamo.MailRef{{EnrollmentID: e.ID, Seq: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	back, err := s.GetEnrollment(ctx, owed.ID)
	if err != nil || !back.MailOwedAt.Equal(t0) {
		t.Fatalf("read back %+v, %v", back, err)
	}
	if n, err := s.ClearMailOwed(ctx, []dynamo.MailRef{{EnrollmentID: owed.ID, Seq: 2}}); err != nil || n != 0 {
		t.Fatalf("cleared %d (%v) for a mail_seq the item does not have", n, err)
	}
	if n, err := s.ClearMailOwed(ctx, []dynamo.MailRef{{EnrollmentID: owed.ID, Seq: 1}, {EnrollmentID: quiet.ID, Seq: 1}}); err != nil || n != 1 {
		t.Fatalf("cleared %d, %v; want 1", n, err)
	}
	if ids := find(t0.Add(time.Hour)); len(ids) != 0 {
		t.Errorf("still owed after clearing: %v", ids)
	}
	back, _ = s.GetEnrollment(ctx, owed.ID)
	if !back.MailOwedAt.IsZero() || back.Version != 1 || back.MailSeq != 1 {
		t.Errorf("after clearing: %+v", back)
	}
}

func TestMailSweepLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _, _ := newStore(t)
	release, ok, err := s.LeaseMailSweep(ctx, "a", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, err := s.LeaseMailSweep(ctx, "b", time.Minute); err != nil || ok {
		t.Fatalf("second sweep got the lease: %v %v", ok, err)
	}
	release(ctx)
	if r, ok, err := s.LeaseMailSweep(ctx, "b", time.Minute); err != nil || !ok {
		t.Fatalf("after release: %v %v", ok, err)
	} else {
		r(ctx)
	}
}

// What the owed-mail index costs: nothing for writes that owe no mail (bulk enroll without
// email_students), one index write unit for a write that owes mail.
func TestOwedMailIndexWriteUnits(t *testing.T) {
	ctx := context.Background()
	course := "course-v1:Org+OwedCost+2026"
	s, _, _ := newStore(t)
	ensureCourses(t, s, []*rollcall.Enrollment{{CourseID: course}})
	const n = 20
	batch := func(prefix string, owed bool) dynamo.MetricsSnapshot {
		var es []*rollcall.Enrollment
		for i := range n {
			email := fmt.Sprintf("%s%02d@example.com", prefix, i)
			e := &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email), CourseID: course, Email: email,
				State: rollcall.StateActive, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode,
				CreatedAt: t0, UpdatedAt: t0, Version: 1, Seq: int64(i + 1)}
			if owed {
				e.MailKind, e.MailSeq, e.MailOwedAt = rollcall.MailEnrolled, 1, t0
			}
			es = append(es, e)
		}
		before := s.Metrics.Snapshot()
		if failed, err := s.PutEnrollments(ctx, es); err != nil || len(failed) > 0 {
			t.Fatal(err, failed)
		}
		return s.Metrics.Snapshot().Sub(before)
	}
	quiet, owed := batch("quiet", false), batch("owed", true)
	t.Logf("per item: no mail %.2f table + %.2f index WCU; mail owed %.2f table + %.2f index WCU",
		quiet.TableWriteUnits/n, quiet.IndexWriteUnits/n, owed.TableWriteUnits/n, owed.IndexWriteUnits/n)
	if quiet.TableWriteUnits/n > 1.05 {
		t.Errorf("table write units per item %.2f", quiet.TableWriteUnits/n)
	}
	if extra := (owed.IndexWriteUnits - quiet.IndexWriteUnits) / n; extra < 0.99 || extra > 1.01 {
		t.Errorf("owed mail costs %.2f index write units per item, want 1 (the GSI5 entry)", extra)
	}
}
