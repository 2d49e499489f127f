// Package retry is the one pause between attempts that every retrying caller uses: the store's
// batch and transaction retries, the mailer's marker writes, the Secrets Manager client.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Pause waits before another attempt: base doubled per attempt (attempt 0 waits about base) up
// to most, plus up to as much again at random, so that writers refused together do not come
// back together. It returns ctx's error if ctx ends first.
func Pause(ctx context.Context, attempt int, base, most time.Duration) error {
	d := base << min(max(attempt, 0), 20)
	if d > most || d <= 0 {
		d = most
	}
	d += time.Duration(rand.Int64N(int64(d) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
