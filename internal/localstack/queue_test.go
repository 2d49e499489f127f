package localstack_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

// sqsRecorder is a JobWorkerFunction stand-in: it records every delivery and fails the
// messages fail names (by body), as a partial batch response.
type sqsRecorder struct {
	mu     sync.Mutex
	events []events.SQSEvent
	fail   func(body string) bool
}

func (r *sqsRecorder) handle(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		if r.fail != nil && r.fail(m.Body) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

func (r *sqsRecorder) deliveries(body string) []events.SQSMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.SQSMessage
	for _, ev := range r.events {
		for _, m := range ev.Records {
			if m.Body == body {
				out = append(out, m)
			}
		}
	}
	return out
}

func runQueues(t *testing.T, rec *sqsRecorder, visibility time.Duration) (*sqs.Client, map[string]string) {
	t.Helper()
	client, urls := testenv.NewQueues(t, localstack.WithVisibilityTimeout(visibility))
	tpl := testenv.Start(t).Template
	lookup := func(_ context.Context, id string) (any, error) {
		if id == "JobWorkerFunction" {
			return rec.handle, nil
		}
		return nil, fmt.Errorf("no handler %s", id)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	r, err := localstack.NewQueueRunner(localstack.QueueRunnerOptions{Template: tpl, Invoker: localstack.NewInvoker(tpl, lookup, log),
		SQS: client, QueueURLs: urls, Pollers: 2, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return client, urls
}

func queueDepth(t *testing.T, c *sqs.Client, url string) int {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &url,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	b, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return a + b
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The worker gets real SQS event records; what it reports as failed comes back after the
// visibility timeout, the rest is deleted; a message that fails maxReceiveCount (5) times
// moves to the dead-letter queue, as SQS's redrive does.
func TestQueueRunnerPartialBatchAndRedrive(t *testing.T) {
	rec := &sqsRecorder{fail: func(body string) bool { return body == "poison" }}
	client, urls := runQueues(t, rec, time.Second)
	for _, body := range []string{"a", "poison", "b"} {
		if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(urls["JobQueue"]), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the poison message in the dead-letter queue", 30*time.Second, func() bool {
		return queueDepth(t, client, urls["JobDeadLetterQueue"]) == 1
	})
	if n := len(rec.deliveries("a")); n != 1 {
		t.Errorf("a delivered %d times, want 1 (deleted after success)", n)
	}
	if n := len(rec.deliveries("b")); n != 1 {
		t.Errorf("b delivered %d times, want 1", n)
	}
	ps := rec.deliveries("poison")
	if len(ps) != 5 {
		t.Errorf("poison delivered %d times, want maxReceiveCount = 5", len(ps))
	}
	last := ps[len(ps)-1]
	if last.EventSource != "aws:sqs" || last.Attributes["ApproximateReceiveCount"] != "5" || last.ReceiptHandle == "" ||
		last.Md5OfBody == "" || last.EventSourceARN == "" || last.AWSRegion != localstack.Region {
		t.Errorf("record = %+v", last)
	}
	if d := queueDepth(t, client, urls["JobQueue"]); d != 0 {
		t.Errorf("JobQueue still holds %d messages", d)
	}
}

// A worker that fails the whole invocation (a crash) leaves every message to come back.
func TestQueueRunnerRetriesAFailedInvocation(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	rec := &sqsRecorder{}
	crashOnce := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			return events.SQSEventResponse{}, fmt.Errorf("worker crashed")
		}
		return rec.handle(ctx, ev)
	}
	client, urls := testenv.NewQueues(t, localstack.WithVisibilityTimeout(time.Second))
	tpl := testenv.Start(t).Template
	inv := localstack.NewInvoker(tpl, func(context.Context, string) (any, error) { return crashOnce, nil }, nil)
	r, err := localstack.NewQueueRunner(localstack.QueueRunnerOptions{Template: tpl, Invoker: inv, SQS: client, QueueURLs: urls, Pollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(urls["JobQueue"]), MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery", 15*time.Second, func() bool { return len(rec.deliveries("x")) == 1 })
	if got := rec.deliveries("x")[0].Attributes["ApproximateReceiveCount"]; got != "2" {
		t.Errorf("receive count %s, want 2", got)
	}
	waitFor(t, "the queue to empty", 10*time.Second, func() bool { return queueDepth(t, client, urls["JobQueue"]) == 0 })
}
