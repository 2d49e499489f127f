package localstack_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

// The scheduler runs every Schedule event of the template, the mail sweep's included.
func TestSchedulerRunsTheMailSweep(t *testing.T) {
	env := testenv.Start(t)
	var (
		mu    sync.Mutex
		fired = map[string]int{}
	)
	lookup := func(_ context.Context, id string) (any, error) {
		return func(_ context.Context, _ json.RawMessage) error {
			mu.Lock()
			fired[id]++
			mu.Unlock()
			return nil
		}, nil
	}
	sched := localstack.NewScheduler(env.Template, localstack.NewInvoker(env.Template, lookup, nil),
		localstack.SchedulerOptions{FireOnStart: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sched.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		ok := fired["MailSweepFunction"] == 1 && fired["ExpireInvitationsFunction"] == 1
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fired %v", fired)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := sched.Fire(context.Background(), "MailSweepFunction"); err != nil {
		t.Fatal(err)
	}
}
