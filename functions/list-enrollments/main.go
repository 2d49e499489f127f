// Command list-enrollments is the Lambda of ListEnrollmentsFunction in template.yaml: it only wires
// configuration, store, domain and handler (internal/app) and hands the handler to Lambda.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/rollcall/rollcall/internal/app"
)

func main() {
	cfg, err := app.ConfigFromEnv()
	if err == nil {
		var h any
		if h, err = app.Handler(context.Background(), "ListEnrollmentsFunction", cfg); err == nil {
			lambda.Start(h)
			return
		}
	}
	slog.Error("ListEnrollmentsFunction: cannot start", "error", err)
	os.Exit(1)
}
