package localstack_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/localstack"
)

// runWith starts a runner with extra options until the test ends.
func (f *streamFixture) runWith(t *testing.T, handlers map[string]any, tweak func(*localstack.StreamRunnerOptions), functions ...string) *localstack.StreamRunner {
	t.Helper()
	lookup := func(_ context.Context, id string) (any, error) {
		if h, ok := handlers[id]; ok {
			return h, nil
		}
		return nil, fmt.Errorf("no handler %s", id)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	opts := localstack.StreamRunnerOptions{
		Template: f.tpl, Invoker: localstack.NewInvoker(f.tpl, lookup, log), DynamoDB: f.db,
		Streams: localstack.NewStreamsClient(f.env.DynamoDBEndpoint), TableName: f.table,
		PollInterval: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond, Functions: functions, Logger: log,
	}
	if tweak != nil {
		tweak(&opts)
	}
	r, err := localstack.NewStreamRunner(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	return r
}

func waitDeadLetters(t *testing.T, r *localstack.StreamRunner, n int) []localstack.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if dl := r.DeadLetters(); len(dl) >= n {
			return dl
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d dead letters, want %d", len(r.DeadLetters()), n)
	return nil
}

// As Lambda does: a record that keeps failing is given up after the event's
// MaximumRetryAttempts (20 in the template) and handed to its on-failure destination; the
// records after it are delivered.
func TestStreamRunnerGivesUpAfterMaximumRetryAttempts(t *testing.T) {
	f := newStreamFixture(t)
	rec := &recorder{fail: func(batch []events.DynamoDBEventRecord, _ int) ([]string, error) {
		for _, r := range batch {
			if r.Change.Keys["PK"].String() == "P#poison" {
				return []string{r.Change.SequenceNumber}, nil
			}
		}
		return nil, nil
	}}
	r := f.runWith(t, map[string]any{"MailerFunction": rec.handle}, nil, "MailerFunction")
	f.put(t, key("P#poison"))
	f.put(t, key("P#after"))

	dl := waitDeadLetters(t, r, 1)[0]
	if dl.Function != "MailerFunction" || dl.Condition != "RetryAttemptsExhausted" || dl.Destination != "StreamDeadLetterQueue" ||
		dl.Attempts != 21 || dl.StartSequenceNumber == "" || dl.ShardID == "" {
		t.Fatalf("dead letter %+v", dl)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		delivered := false
		for _, r := range rec.records() {
			delivered = delivered || r.Change.Keys["PK"].String() == "P#after"
		}
		if delivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record after the given-up one was never delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	poisoned := 0
	for _, r := range rec.records() {
		if r.Change.Keys["PK"].String() == "P#poison" {
			poisoned++
		}
	}
	if poisoned != 21 {
		t.Errorf("the failing record was delivered %d times, want 1 + 20 retries", poisoned)
	}
	if len(r.DeadLetters()) != 1 {
		t.Errorf("dead letters %+v", r.DeadLetters())
	}
}

// Records older than MaximumRecordAgeInSeconds (an hour in the template) are given up unread.
func TestStreamRunnerGivesUpRecordsPastMaximumAge(t *testing.T) {
	f := newStreamFixture(t)
	rec := &recorder{}
	r := f.runWith(t, map[string]any{"AuditFunction": rec.handle}, func(o *localstack.StreamRunnerOptions) {
		o.Now = func() time.Time { return time.Now().Add(61 * time.Minute) }
	}, "AuditFunction")
	f.put(t, key("P#old1"))
	f.put(t, key("P#old2"))
	dl := waitDeadLetters(t, r, 1)
	n := 0
	for _, d := range dl {
		if d.Condition != "RecordAgeExceeded" || d.Function != "AuditFunction" || d.Destination != "StreamDeadLetterQueue" {
			t.Errorf("dead letter %+v", d)
		}
		n += d.BatchSize
	}
	time.Sleep(100 * time.Millisecond)
	if got := len(rec.records()); got != 0 {
		t.Errorf("%d records past their age were delivered", got)
	}
	if n < 1 {
		t.Errorf("dead letters %+v", dl)
	}
}
