package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// HandlerLookup returns a function's Lambda handler (anything lambda.Start accepts) by its
// logical id. The runner binds it to functions.Handler and a Config; tests pass fakes.
type HandlerLookup func(ctx context.Context, logicalID string) (any, error)

// Invoker invokes functions in process the way the Lambda runtime does: JSON in, JSON out,
// with the function's Timeout as the context deadline and a lambdacontext.
// Handlers are built on first use, one per function, so a function whose builder is missing
// only fails its own invocations.
type Invoker struct {
	tpl    *samtemplate.Template
	lookup HandlerLookup
	log    *slog.Logger

	mu       sync.Mutex
	handlers map[string]*handlerEntry
}

// handlerEntry has its own lock so that building one function's handler does not hold up
// invocations of the others.
type handlerEntry struct {
	mu      sync.Mutex
	h       any
	lastErr string // last build error logged, to log each one once
}

// NewInvoker returns an Invoker for the template's functions. A nil logger discards.
func NewInvoker(tpl *samtemplate.Template, lookup HandlerLookup, log *slog.Logger) *Invoker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Invoker{tpl: tpl, lookup: lookup, log: log, handlers: map[string]*handlerEntry{}}
}

// FunctionError is a failed invocation: Kind is "Unavailable" (the handler could not be
// built), "Unhandled" (it returned an error), "Panic" or "TimedOut".
type FunctionError struct {
	Function string
	Kind     string
	Err      error
	Stack    []byte // for Panic
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Function, e.Kind, e.Err)
}

func (e *FunctionError) Unwrap() error { return e.Err }

// Invoke runs one invocation of the function with a JSON payload and returns its JSON result.
func (inv *Invoker) Invoke(ctx context.Context, logicalID string, payload []byte) ([]byte, error) {
	fn, ok := inv.tpl.Function(logicalID)
	if !ok {
		return nil, &FunctionError{Function: logicalID, Kind: "Unavailable", Err: fmt.Errorf("no such function in %s", samtemplate.FileName)}
	}
	h, err := inv.handler(ctx, logicalID)
	if err != nil {
		return nil, &FunctionError{Function: logicalID, Kind: "Unavailable", Err: err}
	}

	ctx, cancel := context.WithTimeout(ctx, fn.Timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       newRequestID(),
		InvokedFunctionArn: "arn:aws:lambda:" + Region + ":123456789012:function:" + logicalID,
	})

	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: &FunctionError{Function: logicalID, Kind: "Panic", Err: fmt.Errorf("%v", p), Stack: debug.Stack()}}
			}
		}()
		// A fresh lambda.Handler per invocation: Invoke returns a slice of a pooled buffer that
		// goes back to the handler's pool as it returns, so a shared handler could overwrite one
		// response with another under concurrent invocations.
		out, err := lambda.NewHandler(h).Invoke(ctx, payload)
		if err != nil {
			done <- result{err: &FunctionError{Function: logicalID, Kind: "Unhandled", Err: err}}
			return
		}
		done <- result{out: append([]byte(nil), out...)}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		// Lambda would freeze the sandbox here; in process the goroutine runs on, but nobody
		// waits for it (its context is cancelled, so well-behaved handlers stop soon).
		if ctx.Err() == context.DeadlineExceeded {
			return nil, &FunctionError{Function: logicalID, Kind: "TimedOut",
				Err: fmt.Errorf("task timed out after %.2f seconds", fn.Timeout.Seconds())}
		}
		return nil, ctx.Err()
	}
}

// Prepare builds the handler of every function in the template now (instead of on first
// use, so the first request is not the slow one) and returns the build errors by function.
func (inv *Invoker) Prepare(ctx context.Context) map[string]error {
	errs := map[string]error{}
	for _, fn := range inv.tpl.Functions() {
		if _, err := inv.handler(ctx, fn.LogicalID); err != nil {
			errs[fn.LogicalID] = err
		}
	}
	return errs
}

// handler returns the cached handler or builds it. Build failures are not cached (the next
// invocation retries, e.g. after a dependency came up) but are logged once per distinct error.
func (inv *Invoker) handler(ctx context.Context, logicalID string) (any, error) {
	inv.mu.Lock()
	e, ok := inv.handlers[logicalID]
	if !ok {
		e = &handlerEntry{}
		inv.handlers[logicalID] = e
	}
	inv.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		return e.h, nil
	}
	h, err := inv.lookup(ctx, logicalID)
	if err == nil && h == nil {
		err = fmt.Errorf("handler is nil")
	}
	if err != nil {
		if e.lastErr != err.Error() {
			e.lastErr = err.Error()
			inv.log.Warn("function unavailable", "function", logicalID, "err", err)
		}
		return nil, err
	}
	e.h, e.lastErr = h, ""
	return h, nil
}

// Template returns the template the invoker serves.
func (inv *Invoker) Template() *samtemplate.Template { return inv.tpl }

// newRequestID returns a UUID-shaped random id, like Lambda's request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
