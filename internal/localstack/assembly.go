package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// StackOptions configure Assemble. make run (infra/local), the tools' throwaway stack
// (infra/internal/stackup) and the end-to-end tests (internal/e2e) all assemble the local
// stack here, so they differ only in these options.
type StackOptions struct {
	Template *samtemplate.Template
	// Lookup builds a function's handler (functions.Handler bound to a Config, or a test's own).
	// Callers running the real functions give each its IAM policy from the template
	// (localiam.Roles.Middleware in app.Config.Authorize), as infra/local does.
	Lookup HandlerLookup
	// DynamoDBEndpoint and TableName locate the table whose stream feeds the stream functions.
	DynamoDBEndpoint string
	TableName        string

	// Streams runs the stream runner; without it the table's stream is not read (no mail, no
	// audit entries).
	Streams bool
	// StreamFunctions, CheckpointDir, PollInterval and MaxBackoff go to the stream runner (see
	// StreamRunnerOptions); their zero values are its defaults.
	StreamFunctions []string
	CheckpointDir   string
	PollInterval    time.Duration
	MaxBackoff      time.Duration

	// Schedules runs the scheduler (FireOnStart: every enabled schedule once at start).
	Schedules   bool
	FireOnStart bool

	// Logger for the gateway's access lines, function errors and the runners; nil discards.
	Logger *slog.Logger
}

// Stack is the local stand-in for AWS around rollcall's functions: one invoker that runs them
// in process, the API gateway in front of it, and the stream runner and scheduler behind it.
type Stack struct {
	Invoker   *Invoker
	Gateway   *Gateway
	Streams   *StreamRunner // nil without StackOptions.Streams
	Scheduler *Scheduler    // nil without StackOptions.Schedules
	// Unavailable are the functions whose handler could not be built (their routes answer
	// 502; the runners retry them).
	Unavailable map[string]error

	log *slog.Logger
}

// Assemble builds the stack and every function's handler. Nothing runs until Run and Serve.
func Assemble(ctx context.Context, o StackOptions) (*Stack, error) {
	if o.Template == nil || o.Lookup == nil {
		return nil, errors.New("localstack: Assemble needs a Template and a Lookup")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{log: log}
	s.Invoker = NewInvoker(o.Template, o.Lookup, log)
	s.Unavailable = s.Invoker.Prepare(ctx)
	gw, err := NewGateway(o.Template, s.Invoker, GatewayOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	s.Gateway = gw
	if o.Streams {
		s.Streams, err = NewStreamRunner(StreamRunnerOptions{
			Template:      o.Template,
			Invoker:       s.Invoker,
			DynamoDB:      NewDynamoDBClient(o.DynamoDBEndpoint),
			Streams:       NewStreamsClient(o.DynamoDBEndpoint),
			TableName:     o.TableName,
			CheckpointDir: o.CheckpointDir,
			PollInterval:  o.PollInterval,
			MaxBackoff:    o.MaxBackoff,
			Functions:     o.StreamFunctions,
			Logger:        log,
		})
		if err != nil {
			return nil, err
		}
	}
	if o.Schedules {
		s.Scheduler = NewScheduler(o.Template, s.Invoker, SchedulerOptions{FireOnStart: o.FireOnStart, Logger: log})
	}
	// The template may name SQS events before the local stack has a queue to feed them from:
	// say so rather than let such a function silently never run.
	for _, fn := range o.Template.Functions() {
		for _, q := range fn.Queues {
			log.Warn("SQS events are not delivered locally yet", "function", fn.LogicalID, "event", q.EventName)
		}
	}
	return s, nil
}

// Run runs the stream runner and the scheduler until ctx ends or one of them fails; it returns
// that failure (nil when ctx ended).
func (s *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runners []func(context.Context) error
	if s.Streams != nil {
		runners = append(runners, s.Streams.Run)
	}
	if s.Scheduler != nil {
		runners = append(runners, s.Scheduler.Run)
	}
	errs := make(chan error, len(runners))
	var wg sync.WaitGroup
	for _, run := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // the first failure, or nil
}

// Serve answers HTTP on ln with the gateway until ctx ends (then it shuts down, giving requests
// in flight 5 s) or the server fails.
func (s *Stack) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Gateway, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("API server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("API server: %w", err)
	}
	return nil
}

// EnsureResources creates (or brings up to date) the table tableName and the stage's mail
// templates from the template, as make run, the tools' stack and the test environment need.
func EnsureResources(ctx context.Context, tpl *samtemplate.Template, dynamoDBEndpoint, sesEndpoint, tableName, stage string) error {
	if err := EnsureTable(ctx, NewDynamoDBClient(dynamoDBEndpoint), tpl, tableName); err != nil {
		return err
	}
	return EnsureEmailTemplates(ctx, NewSESClient(sesEndpoint), tpl, stage)
}
