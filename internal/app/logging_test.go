package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/emf"
)

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// Every log line an invocation writes carries its Lambda request id: HTTP, stream and schedule
// functions alike.
func TestEveryLogLineHasTheRequestID(t *testing.T) {
	cfg := lambdaConfig(t)
	var buf lockedBuffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, fn := range []string{"AdminFunction", "BulkEnrollFunction", "ExpireInvitationsFunction", "MailerFunction", "AuditFunction"} {
		files := map[string]string{
			"AdminFunction":             "../../events/AdminFunction.put-course.json",
			"BulkEnrollFunction":        "../../events/BulkEnrollFunction.json",
			"ExpireInvitationsFunction": "../../events/ExpireInvitationsFunction.json",
			"MailerFunction":            "../../events/MailerFunction.json",
			"AuditFunction":             "../../events/AuditFunction.json",
		}
		payload, err := os.ReadFile(files[fn])
		if err != nil {
			t.Fatal(err)
		}
		h, err := functions.Handler(context.Background(), fn, cfg)
		if err != nil {
			t.Fatal(err)
		}
		buf.mu.Lock()
		buf.Reset()
		buf.mu.Unlock()
		id := "req-" + strings.ToLower(fn)
		ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
		if _, err := lambda.NewHandler(h).Invoke(ctx, payload); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		buf.mu.Lock()
		out := buf.String()
		buf.mu.Unlock()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if out == "" {
			t.Fatalf("%s logged nothing", fn)
		}
		for _, ln := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(ln), &rec); err != nil {
				t.Fatalf("%s: not JSON: %s", fn, ln)
			}
			if rec["request_id"] != id {
				t.Errorf("%s: a line without the request id %q: %s", fn, id, ln)
			}
			if strings.Count(ln, `"request_id"`) != 1 {
				t.Errorf("%s: request_id twice: %s", fn, ln)
			}
		}
	}
}

// A bulk enroll records how many enrollments it changed as an embedded metric line.
func TestBulkEnrollEmitsEnrollmentMetrics(t *testing.T) {
	cfg := lambdaConfig(t)
	var metrics lockedBuffer
	prev := emf.SetOutput(&metrics)
	defer emf.SetOutput(prev)
	for _, f := range []string{"AdminFunction.put-course.json", "BulkEnrollFunction.json"} {
		payload, err := os.ReadFile("../../events/" + f)
		if err != nil {
			t.Fatal(err)
		}
		fn, _, _ := strings.Cut(f, ".")
		invoke(t, cfg, fn, payload)
	}
	var line map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(metrics.String()), "\n") {
		if strings.Contains(ln, `"EnrollmentsChanged"`) {
			if err := json.Unmarshal([]byte(ln), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil || line["Function"] != "BulkEnrollFunction" || line["EnrollmentsChanged"].(float64) < 1 {
		t.Fatalf("no EnrollmentsChanged metric from the bulk enroll: %q", metrics.String())
	}
}
