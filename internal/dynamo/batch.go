package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rollcall/rollcall/internal/retry"
)

// get reads one item (strongly consistent); nil if missing.
func (s *Store) get(ctx context.Context, pk, sk string) (item, error) {
	out, err := s.db().GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(pk, sk),
		ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// batchGet reads keys (strongly consistent) in BatchGetItem calls of 100, several at once,
// retrying unprocessed keys. A key named twice is read once (BatchGetItem rejects a call
// that names a key twice).
func (s *Store) batchGet(ctx context.Context, keys []item) ([]item, error) {
	const chunk = 100
	seen := make(map[string]bool, len(keys))
	keys = slices.DeleteFunc(slices.Clone(keys), func(k item) bool {
		d := describe(k)
		dup := seen[d]
		seen[d] = true
		return dup
	})
	var (
		mu  sync.Mutex
		out = make([]item, 0, len(keys))
	)
	err := s.forChunks(ctx, len(keys), chunk, func(ctx context.Context, lo, hi int) error {
		pending := keys[lo:hi]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return err
				}
			}
			res, err := s.db().BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{s.Table: {Keys: pending, ConsistentRead: aws.Bool(true)}},
			})
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, res.Responses[s.Table]...)
			mu.Unlock()
			pending = res.UnprocessedKeys[s.Table].Keys
			if attempt > 10 && len(pending) > 0 {
				return fmt.Errorf("batch get: %d keys unprocessed after retries", len(pending))
			}
		}
		return nil
	})
	return out, err
}

// forChunks runs fn over [0,n) in chunks, Parallel at a time; the first error cancels the rest.
func (s *Store) forChunks(ctx context.Context, n, size int, fn func(ctx context.Context, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.parallel())
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, lo, hi); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// backoff is the pause before a store retry: 10 ms doubling up to 640 ms, jittered.
func backoff(ctx context.Context, attempt int) error {
	return retry.Pause(ctx, attempt, 10*time.Millisecond, 640*time.Millisecond)
}

// errUnprocessed is the failure of an item DynamoDB still left unprocessed after retries.
var errUnprocessed = errors.New("batch write: unprocessed after retries")

// batchPut writes items with BatchWriteItem and reports, by index, the ones that failed
// (a failing call fails its chunk; unprocessed items are retried with backoff first).
func (s *Store) batchPut(ctx context.Context, items []item) (map[int]error, error) {
	const chunk = 25
	var (
		mu     sync.Mutex
		failed = map[int]error{}
	)
	index := make(map[string]int, len(items))
	for i, it := range items {
		index[describe(it)] = i
	}
	fail := func(reqs []types.WriteRequest, err error) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range reqs {
			failed[index[describe(r.PutRequest.Item)]] = err
		}
	}
	// Failures are per chunk (fn never returns one), so that one failing call does not
	// cancel the others.
	started := make([]bool, len(items)) // a chunk not started (ctx ended) fails as a whole
	err := s.forChunks(ctx, len(items), chunk, func(ctx context.Context, lo, hi int) error {
		for i := lo; i < hi; i++ {
			started[i] = true
		}
		reqs := make([]types.WriteRequest, 0, hi-lo)
		for _, it := range items[lo:hi] {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		for attempt := 0; len(reqs) > 0; attempt++ {
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					fail(reqs, err)
					return nil
				}
			}
			out, err := s.db().BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.Table: reqs},
			})
			if err != nil {
				fail(reqs, fmt.Errorf("batch write: %w", err))
				return nil
			}
			reqs = out.UnprocessedItems[s.Table]
			if attempt >= 8 && len(reqs) > 0 {
				fail(reqs, errUnprocessed)
				return nil
			}
		}
		return nil
	})
	for i := range items {
		if !started[i] {
			failed[i] = fmt.Errorf("batch write: %w", cmp.Or(err, ctx.Err(), context.Canceled))
		}
	}
	if len(failed) == len(items) && len(items) > 0 {
		for _, err := range failed {
			return failed, err
		}
	}
	return failed, nil
}
