package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPauseGrowsAndIsCapped(t *testing.T) {
	for _, c := range []struct {
		attempt int
		lo, hi  time.Duration
	}{{0, 1 * time.Millisecond, 2 * time.Millisecond}, {2, 4 * time.Millisecond, 8 * time.Millisecond}, {30, 8 * time.Millisecond, 16 * time.Millisecond}} {
		start := time.Now()
		if err := Pause(context.Background(), c.attempt, time.Millisecond, 8*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < c.lo {
			t.Errorf("attempt %d paused %v, want at least %v", c.attempt, d, c.lo)
		}
	}
}

func TestPauseEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Pause(ctx, 10, time.Hour, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
