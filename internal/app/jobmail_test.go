package app_test

// The job_finished mail goes out from the table's stream: the worker only writes the job's
// final state, and MailerFunction mails the creator once, through the SES emulator.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app/mail"
	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/stream"
	"github.com/rollcall/rollcall/internal/testenv"
)

// downFirst is SES failing its first n calls (worth retrying), then the real sender.
type downFirst struct {
	n    atomic.Int64
	next rollcall.MailSender
}

func (d *downFirst) Send(ctx context.Context, kind string, msgs []ses.Message) []ses.Result {
	if d.n.Add(-1) >= 0 {
		return (&failingSender{}).Send(ctx, kind, msgs)
	}
	return d.next.Send(ctx, kind, msgs)
}

// Every stream batch is delivered twice (a retried invocation), SES is down at first, and the
// creator's pref-lang is French: each finished job is mailed exactly once, in its creator's
// language, after the stream's retry; a cancelled job is not mailed.
func TestJobFinishedMailedOnceFromTheStream(t *testing.T) {
	services := testenv.Start(t)
	_, table := testenv.NewTable(t) // with its stream
	e := withUserAPI(t, newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, "AdminFunction"))
	mailer, err := mail.NewMailer(context.Background(), e.deps)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mailer.Log = quiet
	flaky := &downFirst{next: mailer.Sender}
	flaky.n.Store(4) // both deliveries of the first batches fail: the stream must retry
	mailer.Sender = flaky
	var (
		mu       sync.Mutex
		finished = map[string]bool{} // sequence numbers of job writes past running, handled twice
		retried  int                 // records the mailer asked the stream to deliver again
	)
	lookup := func(_ context.Context, id string) (any, error) {
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			if _, err := mailer.Handle(ctx, ev); err != nil {
				return events.DynamoDBEventResponse{}, err
			}
			resp, err := mailer.Handle(ctx, ev) // the same batch again, as a retried invocation
			mu.Lock()
			defer mu.Unlock()
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			retried += len(failed)
			for _, r := range ev.Records {
				seq := r.Change.SequenceNumber
				if r.Change.Keys["SK"].String() == "JOB" && r.Change.NewImage["state"].String() != "running" && !failed[seq] {
					finished[seq] = true
				}
			}
			return resp, err
		}, nil
	}
	runStream(t, services, table, lookup, "MailerFunction")

	marie := testenv.Address("jobmail-marie")
	mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": "jobmail_marie", "email": marie}, ""), http.StatusCreated)
	mustStatus(t, e.do("PATCH", "/api/user/v1/preferences/jobmail_marie", token(t, "jobmail_marie", false), `{"pref-lang": "fr-CA"}`,
		"application/merge-patch+json"), http.StatusNoContent)
	bob, carol := testenv.Address("jobmail-bob"), testenv.Address("jobmail-carol")

	store := e.deps.Store
	newJob := func(who, addr string) string {
		j := &rollcall.Job{ID: rollcall.NewJobID(), State: rollcall.JobRunning, CreatedBy: who, CreatorEm: addr,
			CreatedAt: e.clock(), Chunks: 0, Counts: rollcall.JobCounts{Total: 0}}
		if err := store.CreateJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	mj, bj, cj := newJob("jobmail_marie", marie), newJob("jobmail_bob", bob), newJob("jobmail_carol", carol)
	for id, state := range map[string]string{mj: rollcall.JobSucceeded, bj: rollcall.JobPartiallySucceeded, cj: rollcall.JobCancelled} {
		if won, err := store.FinishJob(context.Background(), id, state, e.clock()); err != nil || !won {
			t.Fatalf("finish %s: %v %v", id, won, err)
		}
	}

	fr := testenv.WaitForEmails(t, marie, 1, 30*time.Second)
	en := testenv.WaitForEmails(t, bob, 1, 30*time.Second)
	if fr[0].Subject != "Votre import d’inscriptions est terminé : succeeded" || en[0].Subject != "Your roster job has finished: partially_succeeded" {
		t.Errorf("subjects %q, %q", fr[0].Subject, en[0].Subject)
	}
	// Wait until every final write, and the `mailed` flag's own writes, went through the
	// mailer twice; then count again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(finished)
		mu.Unlock()
		if n >= 5 { // the three final writes and the two flags
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final writes handled: %v", finished)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range []string{mj, bj} {
		if j, err := store.GetJob(context.Background(), id); err != nil || !j.Mailed {
			t.Errorf("job %s mailed = %v (%v)", id, j != nil && j.Mailed, err)
		}
	}
	if n, m, c := len(testenv.Emails(t, marie)), len(testenv.Emails(t, bob)), len(testenv.Emails(t, carol)); n != 1 || m != 1 || c != 0 {
		t.Errorf("mails: marie %d, bob %d, carol (cancelled) %d; want 1, 1, 0", n, m, c)
	}
	if mu.Lock(); retried == 0 {
		t.Errorf("the stream never had to retry a job mail")
	}
	mu.Unlock()
}

// A finished job whose stream record was given up (no mailer ran here) is in the owed-mail
// index, and the sweep sends its job_finished mail once, after the stream's time is up; a job
// the mailer already mailed, a cancelled job and a job without a creator address get none, and
// the second sweep finds nothing owed.
func TestJobMailTheStreamGaveUpIsSweptOnce(t *testing.T) {
	services := testenv.Start(t)
	_, table := testenv.NewTable(t, localstack.WithoutStream())
	e := newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, "AdminFunction")
	store := e.deps.Store
	ctx := context.Background()
	newJob := func(who, addr, state string) string {
		t.Helper()
		j := &rollcall.Job{ID: rollcall.NewJobID(), State: rollcall.JobRunning, CreatedBy: who, CreatorEm: addr, CreatedAt: e.clock()}
		if err := store.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if won, err := store.FinishJob(ctx, j.ID, state, e.clock()); err != nil || !won {
			t.Fatalf("finish %s: %v %v", j.ID, won, err)
		}
		return j.ID
	}
	ann, ben := testenv.Address("jobsweep-ann"), testenv.Address("jobsweep-ben")
	cyd, dot := testenv.Address("jobsweep-cyd"), testenv.Address("jobsweep-dot")
	owed := []string{newJob("jobsweep_ann", ann, rollcall.JobSucceeded), newJob("jobsweep_ben", ben, rollcall.JobPartiallySucceeded)}
	newJob("jobsweep_cyd", cyd, rollcall.JobCancelled)
	nobody := newJob("jobsweep_eve", "", rollcall.JobSucceeded)
	mailed := newJob("jobsweep_dot", dot, rollcall.JobSucceeded)
	if err := store.MarkJobMailed(ctx, mailed); err != nil { // as the stream's mailer does
		t.Fatal(err)
	}

	sweeper, err := mail.NewSweeper(ctx, e.deps)
	if err != nil {
		t.Fatal(err)
	}
	sweeper.Mailer.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if res, err := sweeper.Run(ctx); err != nil || res.Owed != 0 || res.Sent != 0 {
		t.Fatalf("early sweep: %v, %v", res, err) // the stream may still deliver it
	}
	e.advance(sweeper.After + time.Minute)
	res, err := sweeper.Run(ctx)
	if err != nil || res.Sent != 2 || res.Failed != 0 || !res.Complete {
		t.Fatalf("sweep: %v, %v", res, err)
	}
	for _, addr := range []string{ann, ben} {
		if got := testenv.Emails(t, addr); len(got) != 1 || !strings.Contains(got[0].Subject, "roster job has finished") {
			t.Errorf("%s: %d mails %+v", addr, len(got), got)
		}
	}
	for _, addr := range []string{cyd, dot} {
		if got := testenv.Emails(t, addr); len(got) != 0 {
			t.Errorf("%s got %d mails, want none", addr, len(got))
		}
	}
	for _, id := range append(owed, nobody) {
		if j, err := store.GetJob(ctx, id); err != nil || !j.Mailed {
			t.Errorf("job %s mailed = %v (%v)", id, j != nil && j.Mailed, err)
		}
	}
	if res, err := sweeper.Run(ctx); err != nil || res.Owed != 0 || res.Sent != 0 {
		t.Fatalf("second sweep: %v, %v", res, err)
	}
	for _, addr := range []string{ann, ben} {
		if got := len(testenv.Emails(t, addr)); got != 1 {
			t.Errorf("%s: %d mails after the second sweep", addr, got)
		}
	}
}

// failingJobReads is the job side of the table failing for the mailer (reads of jobs time
// out); the rest of the store works.
type failingJobReads struct{ stream.JobMailStore }

func (failingJobReads) GetJob(context.Context, string) (*rollcall.Job, error) {
	return nil, errors.New("job reads time out")
}

// A job mail the sweep cannot send does not stop it: the enrollments' mail owed in the same
// shard, and in the shards after it, still goes out in the same run.
func TestMailSweepGoesOnPastAJobMailThatFails(t *testing.T) {
	services := testenv.Start(t)
	_, table := testenv.NewTable(t, localstack.WithoutStream())
	e := newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, "BulkEnrollFunction", "AdminFunction")
	ctx := context.Background()
	course := "course-v1:Org+SweepOn+2026"
	staff := token(t, "Bob", true)
	mustStatus(t, e.do("PUT", "/api/courses/"+course, staff, map[string]any{"title": "Sweep on"}, ""), http.StatusCreated)
	const n = 40
	addrs := make([]string, n)
	shards := map[int]bool{} // the shards holding the learners' mail
	for i := range addrs {
		addrs[i] = testenv.Address(fmt.Sprintf("sweepon%02d", i))
		shards[dynamo.ShardOf(rollcall.EnrollmentID(course, addrs[i]))] = true
	}
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", staff, map[string]any{
		"identifiers": strings.Join(addrs, ","), "action": "enroll", "email_students": true, "courses": course}, ""), http.StatusOK)

	// A finished job whose mail is owed in a shard that also holds learners' mail, with more
	// learners' mail in later shards.
	later := func(shard int) bool {
		for s := range shards {
			if s > shard {
				return true
			}
		}
		return false
	}
	id := rollcall.NewJobID()
	for tries := 0; !shards[dynamo.ShardOf(id)] || !later(dynamo.ShardOf(id)); tries++ {
		if tries > 1000 {
			t.Fatalf("no job id in a shard before another with learners (%v)", shards)
		}
		id = rollcall.NewJobID()
	}
	j := &rollcall.Job{ID: id, State: rollcall.JobRunning, CreatedBy: "sweepon_ann", CreatorEm: testenv.Address("sweepon-ann"), CreatedAt: e.clock()}
	if err := e.deps.Store.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if won, err := e.deps.Store.FinishJob(ctx, id, rollcall.JobSucceeded, e.clock()); err != nil || !won {
		t.Fatalf("finish: %v %v", won, err)
	}

	sweeper, err := mail.NewSweeper(ctx, e.deps)
	if err != nil {
		t.Fatal(err)
	}
	sweeper.Mailer.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	sweeper.Mailer.Jobs = failingJobReads{sweeper.Mailer.Jobs}
	e.advance(sweeper.After + time.Minute)
	res, err := sweeper.Run(ctx)
	if err != nil || res.Sent != n || res.Failed != 1 {
		t.Fatalf("sweep: %v, %v; want %d sent and the job's mail failed", res, err, n)
	}
	if got := countMail(t, addrs); got != n {
		t.Fatalf("%d of %d learners mailed", got, n)
	}
}
