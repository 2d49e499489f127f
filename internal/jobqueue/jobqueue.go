// Package jobqueue sends roster job chunks to SQS (ElasticMQ locally): the domain's JobQueue.
package jobqueue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// API is the part of the SQS client the queue uses.
type API interface {
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Queue sends chunks to one queue, 10 a call, Parallel calls at once.
type Queue struct {
	Client   API
	URL      string
	Parallel int // default 8
}

var _ rollcall.JobQueue = (*Queue)(nil)

// SendChunks sends every chunk, in order of batches (the first chunks go first, so the job
// shows progress while the rest are still being sent), retrying entries SQS refused.
func (q *Queue) SendChunks(ctx context.Context, chunks []rollcall.JobChunk) error {
	bodies := make([]string, len(chunks))
	for i, c := range chunks {
		b, err := rollcall.EncodeChunk(c)
		if err != nil {
			return err
		}
		bodies[i] = b
	}
	par := q.Parallel
	if par <= 0 {
		par = 8
	}
	sem := make(chan struct{}, par)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for lo := 0; lo < len(bodies); lo += 10 {
		hi := min(lo+10, len(bodies))
		sem <- struct{}{}
		wg.Add(1)
		go func(lo, hi int) {
			defer func() { <-sem; wg.Done() }()
			if err := q.sendBatch(ctx, bodies, lo, hi); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(lo, hi)
	}
	wg.Wait()
	return first
}

func (q *Queue) sendBatch(ctx context.Context, bodies []string, lo, hi int) error {
	pending := make([]types.SendMessageBatchRequestEntry, 0, hi-lo)
	for i := lo; i < hi; i++ {
		pending = append(pending, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(bodies[i])})
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: pending})
		if err != nil {
			return err
		}
		if len(out.Failed) == 0 {
			return nil
		}
		if attempt == 4 {
			return fmt.Errorf("send chunks: %s", aws.ToString(out.Failed[0].Message))
		}
		failed := map[string]bool{}
		for _, f := range out.Failed {
			if f.SenderFault {
				return fmt.Errorf("send chunks: %s", aws.ToString(f.Message))
			}
			failed[aws.ToString(f.Id)] = true
		}
		next := pending[:0]
		for _, e := range pending {
			if failed[aws.ToString(e.Id)] {
				next = append(next, e)
			}
		}
		pending = next
	}
	return nil
}

// RetrySoon makes a received message visible again after d instead of the queue's
// visibility timeout (minutes, sized for a worker that crashed): for a chunk that could not
// run yet because its course or the chunk itself was busy.
func (q *Queue) RetrySoon(ctx context.Context, receiptHandle string, d time.Duration) error {
	_, err := q.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.URL),
		ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(max(d/time.Second, 0))})
	return err
}
