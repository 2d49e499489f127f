package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/testenv"
)

// lambdaConfig is the configuration the sample events were made for (their tokens are
// signed with the local default secret, and live until 2099: a fixed sample cannot hold a
// token within the default 24 h lifetime cap, so this configuration lifts the cap, as
// JWT_MAX_LIFETIME does for make invoke).
func lambdaConfig(t *testing.T) app.Config {
	t.Helper()
	services := testenv.Start(t)
	_, table := testenv.NewTable(t)
	return app.Config{Stage: "local", TableName: table, Region: "us-east-1",
		DynamoDBEndpoint: services.DynamoDBEndpoint, SESEndpoint: services.SESEndpoint,
		JWTSecret: app.DefaultLocalJWTSecret, SigningSecret: testSigningSecret,
		JWTMaxLifetime: 100 * 365 * 24 * time.Hour,
		PublicBaseURL:  "http://127.0.0.1:3000", MailFrom: "no-reply@rollcall.test",
		MailTemplatePrefix: testenv.MailTemplatePrefix, MailSendRate: 100,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// invoke runs a function's Lambda handler on a payload the way the Lambda runtime does.
func invoke(t *testing.T, cfg app.Config, fn string, payload []byte) []byte {
	t.Helper()
	// The function runs with its IAM policy from template.yaml, as in the local stack.
	roles, err := localiam.FromTemplate(testenv.Start(t).Template, localiam.LocalValues(cfg.Stage, cfg.TableName, cfg.MailFrom))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Authorize = roles.Middleware(fn)
	h, err := functions.Handler(context.Background(), fn, cfg)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	out, err := lambda.NewHandler(h).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

// Every sample event in events/ (for sam local invoke -e and make invoke) works as it is on a
// fresh table with the demo data that make invoke ensures: its function's handler returns no
// error, HTTP ones get a 2xx, stream ones fail no record and do their work.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob("../../events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	base := lambdaConfig(t)
	testenv.ClearEmails(t)
	// The invitation page's sample carries a placeholder token (real ones come by mail or in
	// invitation_url): the page answers it, as any unknown token, with 404.
	wantStatus := map[string]int{"InvitationsFunction.json": http.StatusNotFound}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		fn, _, _ := strings.Cut(name, ".")
		seen[fn] = true
		t.Run(name, func(t *testing.T) {
			cfg := base
			_, cfg.TableName = testenv.NewTable(t)
			deps, err := app.Build(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := deps.EnsureDemo(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := deps.EnsureDemo(context.Background()); err != nil {
				t.Fatalf("twice: %v", err)
			}
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out := invoke(t, cfg, fn, payload)
			var probe map[string]any
			if err := json.Unmarshal(payload, &probe); err != nil {
				t.Fatal(err)
			}
			if _, ok := probe["Records"]; ok {
				checkStreamWork(t, cfg, fn, payload, out)
			}
			if probe["routeKey"] != nil {
				var res events.APIGatewayV2HTTPResponse
				if err := json.Unmarshal(out, &res); err != nil {
					t.Fatalf("response %s: %v", out, err)
				}
				if want, ok := wantStatus[name]; ok && res.StatusCode != want || !ok && (res.StatusCode < 200 || res.StatusCode > 299) {
					t.Fatalf("status %d: %s", res.StatusCode, res.Body)
				}
				t.Logf("%d %s", res.StatusCode, strings.TrimSpace(res.Body)[:min(120, len(strings.TrimSpace(res.Body)))])
			}
		})
	}
	for _, fn := range functions.LogicalIDs() {
		if !seen[fn] {
			t.Errorf("no sample event for %s", fn)
		}
	}
}

// checkStreamWork fails unless a stream function handled every record of its sample event
// and did its work: no BatchItemFailures (the handlers report failures there instead of
// returning an error), a mail to each record's address for the mailer, an audit entry for
// each record's enrollment for the auditor.
func checkStreamWork(t *testing.T, cfg app.Config, fn string, payload, out []byte) {
	t.Helper()
	var res events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	if len(res.BatchItemFailures) != 0 {
		t.Fatalf("%s reported failures: %+v", fn, res.BatchItemFailures)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil || len(ev.Records) == 0 {
		t.Fatalf("event: %v (%d records)", err, len(ev.Records))
	}
	deps, err := app.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ev.Records {
		img := r.Change.NewImage
		switch fn {
		case "MailerFunction":
			testenv.WaitForEmails(t, img["email"].String(), 1, 10*time.Second)
		case "AuditFunction":
			entries, err := deps.Store.AuditEntries(context.Background(), img["id"].String())
			if err != nil || len(entries) == 0 {
				t.Fatalf("audit entries of %s: %d, %v", img["id"].String(), len(entries), err)
			}
		default:
			t.Fatalf("no check for the work of stream function %s", fn)
		}
	}
}

// Path parameters reach the handlers intact through the Lambda adapter: a legacy course key
// sent as one segment (%2F) and a parameter with a control character are answered, not 502.
func TestLambdaPathParameters(t *testing.T) {
	cfg := lambdaConfig(t)
	tok := localToken(t)
	event := func(method, route string, params map[string]string, body string) []byte {
		path := route
		for k, v := range params {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: method + " " + route, RawPath: path,
			Headers:        map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json"},
			PathParameters: params, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "127.0.0.1", Stage: "$default", RequestID: "r1",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1"}}}
		b, _ := json.Marshal(ev)
		return b
	}
	status := func(out []byte) (int, string) {
		var res events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Body
	}
	legacy := "edX/DemoX/2014"
	code, body := status(invoke(t, cfg, "AdminFunction", event("PUT", "/api/courses/{course_id}", map[string]string{"course_id": legacy}, `{"title":"Legacy"}`)))
	if code != 201 || !strings.Contains(body, `"course_id":"edX/DemoX/2014"`) {
		t.Fatalf("PUT legacy course: %d %s", code, body)
	}
	code, body = status(invoke(t, cfg, "AdminFunction", event("GET", "/api/courses/{course_id}", map[string]string{"course_id": legacy}, "")))
	if code != 200 {
		t.Fatalf("GET legacy course: %d %s", code, body)
	}
	// HTTP APIs hand rawPath over decoded (three segments here); events made by other tools
	// carry it encoded. The handler goes by the route and the path parameters either way.
	for _, raw := range []string{"/api/courses/edX/DemoX/2014", "/api/courses/edX%2FDemoX%2F2014"} {
		ev := event("GET", "/api/courses/{course_id}", map[string]string{"course_id": legacy}, "")
		var m map[string]any
		_ = json.Unmarshal(ev, &m)
		m["rawPath"] = raw
		ev, _ = json.Marshal(m)
		if code, body := status(invoke(t, cfg, "AdminFunction", ev)); code != 200 || !strings.Contains(body, `"course_id":"edX/DemoX/2014"`) {
			t.Fatalf("GET legacy course with rawPath %s: %d %s", raw, code, body)
		}
	}
	// Both Open edX paths, with and without the trailing slash, reach the bulk function on the
	// route declared without it.
	for _, route := range []string{"/api/bulk_enroll/v1/bulk_enroll", "/appsembler/bulk_enroll"} {
		for _, raw := range []string{route, route + "/"} {
			ev := event("POST", route, nil, `{"action":"enroll","courses":"edX/DemoX/2014","identifiers":"someone@example.com"}`)
			var m map[string]any
			_ = json.Unmarshal(ev, &m)
			m["rawPath"] = raw
			ev, _ = json.Marshal(m)
			if code, body := status(invoke(t, cfg, "BulkEnrollFunction", ev)); code != 200 || !strings.Contains(body, `"someone@example.com"`) {
				t.Fatalf("POST %s: %d %s", raw, code, body)
			}
		}
	}
	code, body = status(invoke(t, cfg, "AdminFunction", event("GET", "/api/users/{username}", map[string]string{"username": "\x14t#?"}, "")))
	if code != 404 || body != `{"detail":"Not found."}` {
		t.Fatalf("control character: %d %s", code, body)
	}
}

// localToken is a staff token under the local default secret (what make token issues).
func localToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../events/AdminFunction.put-course.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(ev.Headers["authorization"], "Bearer ")
}
