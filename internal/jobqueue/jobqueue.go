// Package jobqueue sends roster job chunks to SQS (ElasticMQ locally): the domain's JobQueue.
package jobqueue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// API is the part of SQS the queue uses (Client, or a fake in tests).
type API interface {
	SendMessageBatch(ctx context.Context, in *SendMessageBatchInput) (*SendMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *ChangeMessageVisibilityInput) error
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
	delays := make([]int32, len(chunks))
	for i, c := range chunks {
		delays[i] = int32(c.SendDelay() / time.Second)
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
			if err := q.sendBatch(ctx, bodies, delays, lo, hi); err != nil {
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

func (q *Queue) sendBatch(ctx context.Context, bodies []string, delays []int32, lo, hi int) error {
	pending := make([]BatchEntry, 0, hi-lo)
	for i := lo; i < hi; i++ {
		pending = append(pending, BatchEntry{ID: strconv.Itoa(i), MessageBody: bodies[i], DelaySeconds: delays[i]})
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		out, err := q.Client.SendMessageBatch(ctx, &SendMessageBatchInput{QueueUrl: q.URL, Entries: pending})
		if err != nil {
			return err
		}
		if len(out.Failed) == 0 {
			return nil
		}
		if attempt == 4 {
			return fmt.Errorf("send chunks: %s", out.Failed[0].Message)
		}
		failed := map[string]bool{}
		for _, f := range out.Failed {
			if f.SenderFault {
				return fmt.Errorf("send chunks: %s", f.Message)
			}
			failed[f.ID] = true
		}
		next := pending[:0]
		for _, e := range pending {
			if failed[e.ID] {
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
	return q.Client.ChangeMessageVisibility(ctx, &ChangeMessageVisibilityInput{QueueUrl: q.URL,
		ReceiptHandle: receiptHandle, VisibilityTimeout: int32(max(d/time.Second, 0))})
}
