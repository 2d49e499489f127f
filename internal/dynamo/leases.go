package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// LockCourses takes the leases of all the courses in sorted order (so that two requests never
// wait for each other in a cycle). When one is held by another request it waits for it a
// little (holdWait) while keeping the leases it has; if it is still busy then, it releases
// them, waits for that one (with reads) and starts again. Keeping leases while waiting long
// would make everyone queued on them wait too (a convoy); giving them up at once would
// starve a request that needs several courses free together. A lease past its time is free,
// so a crashed holder blocks for at most ttl, or until its ctx's deadline (see leaseUntil).
// Each request attempt is its own owner.
func (s *Store) LockCourses(ctx context.Context, courses []string, owner string, ttl, wait time.Duration) (func(context.Context), error) {
	const holdWait = 250 * time.Millisecond
	sorted := append([]string(nil), courses...)
	sort.Strings(sorted)
	deadline := time.Now().Add(wait)
	var held []lease
	for {
		more, busy, err := s.tryLeases(ctx, courseLeases(sorted)[len(held):], owner, ttl)
		held = append(held, more...)
		if err != nil {
			s.releaseLeases(context.WithoutCancel(ctx), held, owner)
			return nil, err
		}
		if busy == nil {
			return func(ctx context.Context) { s.releaseLeases(ctx, held, owner) }, nil
		}
		if len(held) > 0 {
			short := time.Now().Add(holdWait)
			if deadline.Before(short) {
				short = deadline
			}
			if s.awaitLease(ctx, *busy, short) == nil {
				continue
			}
			s.releaseLeases(context.WithoutCancel(ctx), held, owner)
			held = nil
		}
		if err := s.awaitLease(ctx, *busy, deadline); err != nil {
			return nil, fmt.Errorf("lock course %s: %w", busy.name, err)
		}
	}
}

// lease is one lease item: a shard of a course's lease (name: the course), or the mail
// sweep's.
type lease struct{ pk, sk, name string }

// courseLeases are every shard of each course's lease, in the order they are taken.
func courseLeases(sorted []string) []lease {
	out := make([]lease, 0, len(sorted)*LeaseShards)
	for _, c := range sorted {
		for k := range LeaseShards {
			out = append(out, courseLease(c, k))
		}
	}
	return out
}

func courseLease(courseID string, shard int) lease {
	return lease{pk: LeasePK(courseID), sk: LeaseSK(shard), name: courseID}
}

// leaseMargin is how long a lease outlives its holder's deadline: long enough for a write
// already sent when the holder stopped to land.
const leaseMargin = 2 * time.Second

// leaseUntil is when a lease taken now expires: after ttl, or at the holder's deadline (plus
// leaseMargin) if that comes first. Lambda stops an invocation at its deadline, so a holder
// that crashes or times out blocks its courses until then, not for the whole ttl.
func leaseUntil(ctx context.Context, now time.Time, ttl time.Duration) time.Time {
	until := now.Add(ttl)
	if d, ok := ctx.Deadline(); ok && d.Add(leaseMargin).Before(until) {
		until = d.Add(leaseMargin)
	}
	return until
}

// tryLeases takes the leases in order until one is held by someone else (busy).
func (s *Store) tryLeases(ctx context.Context, leases []lease, owner string, ttl time.Duration) (held []lease, busy *lease, err error) {
	for i, l := range leases {
		now := time.Now()
		until := leaseUntil(ctx, now, ttl)
		it := key(l.pk, l.sk)
		it["owner"] = str(owner)
		it["until"] = num(until.UnixMilli())
		it["ttl"] = num(until.Unix() + 3600)
		_, err := s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: it,
			ConditionExpression:       aws.String("attribute_not_exists(PK) OR #u < :now OR #o = :o"),
			ExpressionAttributeNames:  map[string]string{"#u": "until", "#o": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":o": str(owner)}})
		if err == nil {
			held = append(held, l)
			continue
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return held, &leases[i], nil
		}
		return held, nil, fmt.Errorf("lock course %s: %w", l.name, err)
	}
	return held, nil, nil
}

// releaseLeases deletes the leases the owner holds (best effort: they expire anyway), last
// taken first: the first shard of a course, the one waiters poll, is free only once all are.
func (s *Store) releaseLeases(ctx context.Context, leases []lease, owner string) {
	for i := len(leases) - 1; i >= 0; i-- {
		l := leases[i]
		// A failed delete is left to expire (its condition fails when the lease has passed on).
		_, _ = s.db().DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.Table, Key: key(l.pk, l.sk),
			ConditionExpression:       aws.String("#o = :o"),
			ExpressionAttributeNames:  map[string]string{"#o": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":o": str(owner)}})
	}
}

// awaitLease polls a held lease with an eventually consistent read until it looks free, or
// returns ErrCourseBusy at the deadline. Every hand-off of a busy course waits out part of a
// poll, so the first polls come fast (5-15 ms): in make load on this machine, 20-50 ms polls
// gave 1, 3 and 1 "course busy" 503s in three runs and 5-15 ms gave 0, 1 and 0. A wait that
// lasts is behind a large holder (a bulk request or a roster job's chunk, a second or more),
// and there the pause grows to about 100 ms (see leasePollPause): seven job chunks queued on
// one course, polling every 10 ms, made 700 reads a second that the holder's writes competed
// with. A poll costs half a read unit, and only while waiting.
func (s *Store) awaitLease(ctx context.Context, l lease, deadline time.Time) error {
	start := time.Now()
	for {
		if time.Now().After(deadline) {
			return rollcall.ErrCourseBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(leasePollPause(time.Since(start))):
		}
		out, err := s.db().GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(l.pk, l.sk),
			ProjectionExpression: aws.String("#u"), ExpressionAttributeNames: map[string]string{"#u": "until"}})
		if err != nil {
			return err
		}
		if len(out.Item) == 0 || getN(out.Item, "until") < time.Now().UnixMilli() {
			return nil
		}
	}
}

// leasePollPause is the pause before the next poll of a lease waited on for waited: 5-15 ms
// for the first 250 ms, then a quarter of the time waited so far, up to 100 ms, jittered by
// half so that waiters do not poll in step.
func leasePollPause(waited time.Duration) time.Duration {
	const fast, slow = 250 * time.Millisecond, 100 * time.Millisecond
	if waited < fast {
		return 5*time.Millisecond + time.Duration(rand.Int64N(int64(10*time.Millisecond)))
	}
	p := min(waited/4, slow)
	return p/2 + time.Duration(rand.Int64N(int64(p)))
}
