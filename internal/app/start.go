package app

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Start runs the function logicalID of template.yaml as a Lambda: configuration from the
// environment, the handler build makes of it, then lambda.Start. A function that cannot start
// logs why and exits 1. Every functions/<name>/main.go is one call of Start.
func Start(logicalID string, build Builder) {
	cfg, err := ConfigFromEnv()
	if err == nil {
		var h any
		if h, err = build(context.Background(), cfg); err == nil {
			lambda.Start(h)
			return
		}
	}
	slog.Error(logicalID+": cannot start", "error", err)
	os.Exit(1)
}
