package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// QueueRunnerOptions configure NewQueueRunner.
type QueueRunnerOptions struct {
	Template *samtemplate.Template
	Invoker  *Invoker
	SQS      *sqs.Client
	// QueueURLs by the queue's logical id (EnsureQueues' answer).
	QueueURLs map[string]string
	// Pollers per event source (Lambda scales its SQS pollers with the backlog); default 4.
	Pollers int
	Logger  *slog.Logger
}

// QueueRunner is Lambda's SQS event source mapping for the local stack: it long-polls each
// queue that a function's SQS event names, invokes the function with an events.SQSEvent of
// up to BatchSize messages (gathered for at most MaximumBatchingWindowInSeconds), deletes the
// messages that succeeded and leaves the failed ones to come back when their visibility
// timeout ends. The queue's own redrive policy (ElasticMQ implements SQS's) moves a message
// that keeps failing to the dead-letter queue after maxReceiveCount receives.
type QueueRunner struct {
	o       QueueRunnerOptions
	log     *slog.Logger
	sources []queueSource
}

type queueSource struct {
	function string
	event    samtemplate.QueueEvent
	url      string
	arn      string
	partial  bool
}

// NewQueueRunner finds the template's SQS event sources. An event whose queue has no URL is
// an error: a function that would silently never run.
func NewQueueRunner(o QueueRunnerOptions) (*QueueRunner, error) {
	if o.Pollers <= 0 {
		o.Pollers = 4
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &QueueRunner{o: o, log: log}
	for _, fn := range o.Template.Functions() {
		for _, ev := range fn.Queues {
			url := o.QueueURLs[ev.QueueID]
			if url == "" {
				return nil, fmt.Errorf("localstack: %s.%s reads queue %q, which was not created", fn.LogicalID, ev.EventName, ev.QueueID)
			}
			r.sources = append(r.sources, queueSource{function: fn.LogicalID, event: ev, url: url,
				arn: "arn:aws:sqs:" + Region + ":123456789012:" + lastSegment(url), partial: ev.ReportBatchItemFailures()})
		}
	}
	return r, nil
}

func lastSegment(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}

// Run polls until ctx ends.
func (r *QueueRunner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, src := range r.sources {
		for range r.o.Pollers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.poll(ctx, src)
			}()
		}
	}
	wg.Wait()
	return nil
}

func (r *QueueRunner) poll(ctx context.Context, src queueSource) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		msgs, err := r.receive(ctx, src)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("queue receive failed", "function", src.function, "err", err)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(msgs) == 0 {
			continue
		}
		if err := r.Deliver(ctx, src.function, src.event.EventName, msgs); err != nil && ctx.Err() == nil {
			r.log.Warn("queue batch failed", "function", src.function, "messages", len(msgs), "err", err)
		}
	}
}

// receive gathers up to BatchSize messages: one long poll, then more short ones while the
// batching window lasts.
func (r *QueueRunner) receive(ctx context.Context, src queueSource) ([]sqstypes.Message, error) {
	var out []sqstypes.Message
	deadline := time.Now().Add(src.event.MaximumBatchingWindow)
	wait := int32(1)
	for len(out) < src.event.BatchSize {
		n := int32(min(10, src.event.BatchSize-len(out)))
		res, err := r.o.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(src.url),
			MaxNumberOfMessages:         n,
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if len(out) > 0 {
				return out, nil
			}
			return nil, err
		}
		out = append(out, res.Messages...)
		if len(res.Messages) == 0 && len(out) > 0 || !time.Now().Before(deadline) {
			break
		}
		wait = 0
	}
	return out, nil
}

// Deliver invokes the function of a queue event with these messages as Lambda would, and
// deletes what succeeded. Exported for tests that deliver a message twice on purpose.
func (r *QueueRunner) Deliver(ctx context.Context, function, eventName string, msgs []sqstypes.Message) error {
	var src *queueSource
	for i := range r.sources {
		if r.sources[i].function == function && r.sources[i].event.EventName == eventName {
			src = &r.sources[i]
		}
	}
	if src == nil {
		return fmt.Errorf("localstack: no SQS event %s.%s", function, eventName)
	}
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		ev.Records = append(ev.Records, SQSRecord(m, src.arn))
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	out, err := r.o.Invoker.Invoke(ctx, function, payload)
	if err != nil {
		return err // every message comes back after its visibility timeout
	}
	failed := map[string]bool{}
	if src.partial && len(out) > 0 && string(out) != "null" {
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return fmt.Errorf("batch response: %w", err)
		}
		known := map[string]bool{}
		for _, m := range msgs {
			known[aws.ToString(m.MessageId)] = true
		}
		for _, f := range resp.BatchItemFailures {
			if !known[f.ItemIdentifier] {
				// Lambda treats an unknown or empty identifier as a failure of the whole batch.
				return fmt.Errorf("batch response names unknown message %q: the whole batch fails", f.ItemIdentifier)
			}
			failed[f.ItemIdentifier] = true
		}
	}
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if !failed[aws.ToString(m.MessageId)] {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	for len(del) > 0 {
		n := min(10, len(del))
		res, err := r.o.SQS.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(src.url), Entries: del[:n]})
		if err != nil {
			return fmt.Errorf("delete processed messages: %w", err)
		}
		if len(res.Failed) > 0 {
			return errors.New("delete processed messages: " + aws.ToString(res.Failed[0].Message))
		}
		del = del[n:]
	}
	return nil
}

// SQSRecord is the Lambda event record of a received message.
func SQSRecord(m sqstypes.Message, queueARN string) events.SQSMessage {
	rec := events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Md5OfBody:              aws.ToString(m.MD5OfBody),
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             map[string]string{},
		MessageAttributes:      map[string]events.SQSMessageAttribute{},
		EventSourceARN:         queueARN,
		EventSource:            "aws:sqs",
		AWSRegion:              Region,
	}
	for k, v := range m.Attributes {
		rec.Attributes[k] = v
	}
	for k, v := range m.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{
			StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType),
		}
	}
	return rec
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
