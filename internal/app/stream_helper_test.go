package app_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

// runStream runs the local stream runner on table's stream for these functions until the test
// ends, each function's record batches going to the handler lookup gives it, and returns it
// (for its dead letters).
func runStream(t *testing.T, services *testenv.Env, table string, lookup localstack.HandlerLookup, functions ...string) *localstack.StreamRunner {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner, err := localstack.NewStreamRunner(localstack.StreamRunnerOptions{
		Template: services.Template, Invoker: localstack.NewInvoker(services.Template, lookup, quiet),
		DynamoDB: localstack.NewDynamoDBClient(services.DynamoDBEndpoint), Streams: localstack.NewStreamsClient(services.DynamoDBEndpoint),
		TableName: table, PollInterval: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Functions: functions, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return runner
}
