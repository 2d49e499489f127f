package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SendRate is the SES send rate shared by every mailer instance (the stream mailer's
// concurrent invocations and the owed-mail sweep): each wall-clock second has a counter item
// (MailRatePK), and a call for n messages adds n to the current second's counter only if the
// sum stays within Rate; when it would not, it waits for the next second and tries there.
// One conditional UpdateItem per SendBulkEmail call (not per message), about 1 WCU.
//
// Seconds are wall-clock seconds of the instances' clocks (NTP-synchronised in Lambda), so two
// instances agree on them to within milliseconds. A burst may straddle a second boundary (Rate
// at the end of one second, Rate at the start of the next); SES's rate allows such bursts.
type SendRate struct {
	Store *Store
	// Rate is the most messages any one second may carry, across all instances.
	Rate int
	// Now is the wall clock (never a test's frozen domain clock: the budget is real time);
	// nil means time.Now.
	Now func() time.Time
}

// Wait blocks until n messages may be sent now, reserving them, or ctx ends (or its deadline
// would pass before they could be). A call of more messages than a second carries (SES's 50
// destinations at a rate of 14) reserves them in consecutive seconds, Rate at most in each,
// and may go once the last is reserved: the rate holds on average, and SES accepts such short
// bursts; cutting the call to the rate instead would make 4x the calls.
func (r *SendRate) Wait(ctx context.Context, n int) error {
	if r == nil || r.Rate <= 0 || n <= 0 {
		return ctx.Err()
	}
	for n > 0 {
		part := min(n, r.Rate)
		if err := r.reserve(ctx, part); err != nil {
			return err
		}
		n -= part
	}
	return nil
}

// reserve adds n (at most Rate) to the first second from now whose counter has room for them.
func (r *SendRate) reserve(ctx context.Context, n int) error {
	now := r.now
	s := r.Store
	for attempt := 0; ; attempt++ {
		t := now()
		sec := t.Unix()
		_, err := s.db().UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.Table,
			Key:                       key(MailRatePK(sec), skMailRate),
			UpdateExpression:          aws.String("ADD n :n SET #ttl = :ttl"),
			ConditionExpression:       aws.String("attribute_not_exists(n) OR n <= :max"),
			ExpressionAttributeNames:  map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(n)), ":max": num(int64(r.Rate - n)), ":ttl": num(sec + 3600)},
		})
		if err == nil {
			return nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return fmt.Errorf("send rate: %w", err)
		}
		// This second is full: wait for the next one (a few ms past it, spread a little so
		// that waiting instances do not all arrive at once).
		next := time.Unix(sec+1, 0).Add(time.Duration(attempt%5) * 3 * time.Millisecond)
		if dl, ok := ctx.Deadline(); ok && next.After(dl) {
			return fmt.Errorf("send rate: no room before the deadline: %w", context.DeadlineExceeded)
		}
		timer := time.NewTimer(next.Sub(t))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

func (r *SendRate) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
