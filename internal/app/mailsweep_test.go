package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app/mail"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/testenv"
)

// failingSender is SES being unreachable: every message fails in a way worth retrying.
type failingSender struct{ calls atomic.Int64 }

func (f *failingSender) Send(_ context.Context, _ string, msgs []ses.Message) []ses.Result {
	f.calls.Add(1)
	out := make([]ses.Result, len(msgs))
	for i := range out {
		out[i] = ses.Result{Outcome: ses.Retry, Status: "ERROR", Err: fmt.Errorf("SES unreachable")}
	}
	return out
}

// The mailer fails until the stream gives its records up (to the dead-letter sink, as Lambda
// would to the queue); the mail is still owed in the table, and the sweep sends each mail
// exactly once, counted in the SES emulator. A second sweep sends nothing.
func TestMailSweepSendsWhatTheStreamGaveUpExactlyOnce(t *testing.T) {
	services := testenv.Start(t)
	_, table := testenv.NewTable(t) // with its stream
	e := newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, "BulkEnrollFunction", "AdminFunction")
	staff := token(t, "Bob", true)
	course := "course-v1:Org+Sweep+2026"
	mustStatus(t, e.do("PUT", "/api/courses/"+course, staff, map[string]any{"title": "Sweep"}, ""), http.StatusCreated)

	// The stream mailer, with SES down.
	mailer, err := mail.NewMailer(context.Background(), e.deps)
	if err != nil {
		t.Fatal(err)
	}
	down := &failingSender{}
	mailer.Sender = down
	mailer.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	lookup := func(_ context.Context, id string) (any, error) {
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return mailer.Handle(ctx, ev)
		}, nil
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := runStream(t, services, table, lookup, "MailerFunction")

	const n = 60 // two SendBulkEmail calls' worth and more
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = testenv.Address(fmt.Sprintf("sweep%02d", i))
	}
	r := e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", staff, map[string]any{
		"identifiers": strings.Join(addrs, ","), "action": "enroll", "email_students": true, "courses": course}, "")
	mustStatus(t, r, http.StatusOK)

	// Every owed mail's record is given up after MaximumRetryAttempts.
	deadline := time.Now().Add(60 * time.Second)
	for {
		given := 0
		for _, dl := range runner.DeadLetters() {
			if dl.Destination != "StreamDeadLetterQueue" || dl.Condition != "RetryAttemptsExhausted" {
				t.Fatalf("dead letter %+v", dl)
			}
			given += dl.BatchSize
		}
		if given >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records given up after %v, want %d", given, 60*time.Second, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if down.calls.Load() < 21 {
		t.Errorf("the mailer tried %d times", down.calls.Load())
	}
	if got := countMail(t, addrs); got != 0 {
		t.Fatalf("%d mails went out while SES was down", got)
	}

	sweeper, err := mail.NewSweeper(context.Background(), e.deps)
	if err != nil {
		t.Fatal(err)
	}
	sweeper.Mailer.Log = quiet
	// Not yet: the stream could still deliver mail owed for less than After.
	res, err := sweeper.Run(context.Background())
	if err != nil || res.Owed != 0 || res.Sent != 0 || !res.Complete {
		t.Fatalf("early sweep: %v, %v", res, err)
	}
	e.advance(sweeper.After + time.Minute)
	res, err = sweeper.Run(context.Background())
	if err != nil || res.Sent != n || res.Failed != 0 || !res.Complete {
		t.Fatalf("sweep: %v, %v", res, err)
	}
	for _, a := range addrs {
		if got := len(testenv.Emails(t, a)); got != 1 {
			t.Errorf("%s got %d mails, want 1", a, got)
		}
	}
	res, err = sweeper.Run(context.Background())
	if err != nil || res.Owed != 0 || res.Sent != 0 {
		t.Fatalf("second sweep: %v, %v", res, err)
	}
	if got := countMail(t, addrs); got != n {
		t.Fatalf("%d mails after the second sweep, want %d", got, n)
	}
}

func countMail(t *testing.T, addrs []string) int {
	t.Helper()
	n := 0
	for _, a := range addrs {
		n += len(testenv.Emails(t, a))
	}
	return n
}
