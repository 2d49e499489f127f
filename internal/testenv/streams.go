package testenv

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/localstack"
)

// RunStreams runs a localstack.StreamRunner on table for the test's duration: it feeds the
// table's stream to the given functions (default: every function with a DynamoDB event in
// template.yaml), built by lookup (typically functions.Handler bound to the test's Config).
// It polls every 50 ms so tests do not wait on the 250 ms of make run.
func RunStreams(t testing.TB, table string, lookup localstack.HandlerLookup, functions ...string) {
	t.Helper()
	e := Start(t)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := localstack.NewStreamRunner(localstack.StreamRunnerOptions{
		Template:     e.Template,
		Invoker:      localstack.NewInvoker(e.Template, lookup, log),
		DynamoDB:     localstack.NewDynamoDBClient(e.DynamoDBEndpoint),
		Streams:      localstack.NewStreamsClient(e.DynamoDBEndpoint),
		TableName:    table,
		PollInterval: 50 * time.Millisecond,
		MaxBackoff:   time.Second,
		Functions:    functions,
		Logger:       log,
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("testenv: stream runner: %v", err)
		}
	})
}

// testWriter sends log lines to t.Log, so they show with the failing test.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
