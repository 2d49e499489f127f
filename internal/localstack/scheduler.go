package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// Scheduler plays the EventBridge rules of the template's Schedule events: it invokes each
// function at its rate() with a scheduled event, and can fire one on demand.
type Scheduler struct {
	tpl  *samtemplate.Template
	inv  *Invoker
	log  *slog.Logger
	opts SchedulerOptions

	mu      sync.Mutex
	running map[string]bool // function.event -> an invocation is in flight
}

// SchedulerOptions tunes a Scheduler; the zero value is fine.
type SchedulerOptions struct {
	// FireOnStart invokes every enabled schedule once when Run starts (EventBridge would wait
	// a full period, which a runner restarted every few minutes would never reach).
	FireOnStart bool
	Logger      *slog.Logger
	// Now is the clock for the events' time field; nil means time.Now.
	Now func() time.Time
}

// NewScheduler returns a Scheduler for the template's Schedule events.
func NewScheduler(tpl *samtemplate.Template, inv *Invoker, opts SchedulerOptions) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Scheduler{tpl: tpl, inv: inv, log: opts.Logger, opts: opts, running: map[string]bool{}}
}

// Run fires every enabled rate() schedule at its period until ctx is cancelled, then returns
// nil. A tick that finds the previous invocation still running is skipped.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, fn := range s.tpl.Functions() {
		for _, ev := range fn.Schedules {
			if !ev.Enabled {
				continue
			}
			if ev.Rate == 0 {
				s.log.Warn("schedule not run on a timer (only rate() is supported); fire it on demand",
					"function", fn.LogicalID, "schedule", ev.Expression)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.opts.FireOnStart {
					s.tick(ctx, fn.LogicalID, ev)
				}
				t := time.NewTicker(ev.Rate)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						s.tick(ctx, fn.LogicalID, ev)
					}
				}
			}()
		}
	}
	wg.Wait()
	return nil
}

func (s *Scheduler) tick(ctx context.Context, fn string, ev samtemplate.ScheduleEvent) {
	key := fn + "." + ev.EventName
	s.mu.Lock()
	if s.running[key] {
		s.mu.Unlock()
		s.log.Warn("schedule skipped: previous invocation still running", "function", fn, "event", ev.EventName)
		return
	}
	s.running[key] = true
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			s.mu.Unlock()
		}()
		if _, err := s.fire(ctx, fn, ev); err != nil && ctx.Err() == nil {
			s.log.Error("scheduled invocation failed", "function", fn, "event", ev.EventName, "err", err)
		}
	}()
}

// Fire invokes every Schedule event of a function now (in template order) and returns the
// last result.
func (s *Scheduler) Fire(ctx context.Context, logicalID string) ([]byte, error) {
	fn, ok := s.tpl.Function(logicalID)
	if !ok || len(fn.Schedules) == 0 {
		return nil, fmt.Errorf("%s has no Schedule event in %s", logicalID, samtemplate.FileName)
	}
	var out []byte
	for _, ev := range fn.Schedules {
		var err error
		if out, err = s.fire(ctx, logicalID, ev); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// FireAll invokes every enabled schedule now, one after the other, logging failures.
func (s *Scheduler) FireAll(ctx context.Context) {
	for _, fn := range s.tpl.Functions() {
		for _, ev := range fn.Schedules {
			if ev.Enabled {
				s.tick(ctx, fn.LogicalID, ev)
			}
		}
	}
}

func (s *Scheduler) fire(ctx context.Context, fn string, ev samtemplate.ScheduleEvent) ([]byte, error) {
	start := time.Now()
	payload := []byte(ev.Input)
	if ev.Input == "" {
		payload = ScheduledEvent(fn, ev.EventName, s.opts.Now())
	}
	out, err := s.inv.Invoke(ctx, fn, payload)
	if err == nil {
		s.log.Info("scheduled invocation", "function", fn, "event", ev.EventName, "ms", time.Since(start).Milliseconds())
	}
	return out, err
}

// ScheduledEvent is the event an EventBridge schedule rule sends a function.
func ScheduledEvent(function, eventName string, t time.Time) []byte {
	ev := map[string]any{
		"version":     "0",
		"id":          newRequestID(),
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     localAccountID,
		"time":        t.UTC().Format(time.RFC3339),
		"region":      Region,
		"resources":   []string{"arn:aws:events:" + Region + ":" + localAccountID + ":rule/rollcall-local-" + function + eventName},
		"detail":      map[string]any{},
	}
	b, _ := json.Marshal(ev)
	return b
}
