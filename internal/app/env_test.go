package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/web"
	"github.com/rollcall/rollcall/internal/auth"
	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

const (
	testJWTSecret     = "test-jwt-secret"
	testSigningSecret = "test-signing-secret-0123456789"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one fresh table behind the real handlers of the given functions, served in process.
type env struct {
	t       *testing.T
	deps    *app.Deps
	handler http.Handler
	mu      sync.Mutex
	now     time.Time
}

// newEnv serves the functions' routes (from template.yaml) over a fresh DynamoDB Local table.
func newEnv(t *testing.T, functions ...string) *env {
	t.Helper()
	services := testenv.Start(t)
	_, table := testenv.NewTable(t, localstack.WithoutStream()) // nothing here reads the stream
	return newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, functions...)
}

// newEnvOn is newEnv on a given DynamoDB endpoint and table.
func newEnvOn(t *testing.T, dynamoEndpoint, sesEndpoint, table string, functions ...string) *env {
	t.Helper()
	e := &env{t: t, now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	cfg := app.Config{
		Stage: "local", TableName: table, Region: "us-east-1",
		DynamoDBEndpoint: dynamoEndpoint, SESEndpoint: sesEndpoint,
		JWTSecret: testJWTSecret, SigningSecret: testSigningSecret,
		PublicBaseURL: "http://rollcall.test", MailFrom: "no-reply@rollcall.test", MailTemplatePrefix: testenv.MailTemplatePrefix,
		MailSendRate: 100,
		Now:          e.clock,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	d, err := app.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.deps = d
	var routes []httpapi.Route
	ops := map[string]http.HandlerFunc{}
	api := mustAPI(t, d)
	for _, fn := range functions {
		routes = append(routes, web.Routes(fn)...)
		var fnOps map[string]http.HandlerFunc
		switch fn {
		case "BulkEnrollFunction":
			fnOps = api.BulkOps()
		case "AdminFunction":
			fnOps = api.AdminOps()
		case "ListEnrollmentsFunction":
			fnOps = api.ListOps()
		default:
			t.Fatalf("newEnv: no ops for %s", fn)
		}
		for k, v := range fnOps {
			ops[k] = v
		}
	}
	h, err := httpapi.Handler(cfg.Logger, routes, ops)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func token(t *testing.T, username string, staff bool) string {
	t.Helper()
	tok, err := auth.IssueLocal([]byte(testJWTSecret), username, username+"@example.com", staff, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return v
}

// do sends a request; body is JSON-encoded unless it is a string (sent as is with ctype).
func (e *env) do(method, path, tok string, body any, ctype string) response {
	e.t.Helper()
	return e.serve(e.request(method, path, tok, body, ctype))
}

// request builds the request do sends, for a test that adds headers or a context first.
func (e *env) request(method, path, tok string, body any, ctype string) *http.Request {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req := httptest.NewRequest(method, path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req
}

// serve sends a request through the handler.
func (e *env) serve(req *http.Request) response {
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// mustStatus fails unless r has the status.
func mustStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
}

// jsonEqual compares a body with the expected JSON text, ignoring key order.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("body\n got: %s\nwant: %s", gb, wb)
	}
}

// mustAPI is the HTTP adapter the HTTP functions build over d.
func mustAPI(t *testing.T, d *app.Deps) *httpapi.API {
	t.Helper()
	api, err := web.API(d)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// Functions that put links in mail need PUBLIC_BASE_URL when deployed; locally they default
// to make run's gateway.
func TestLinkBase(t *testing.T) {
	if _, err := (app.Config{Stage: "prod"}).LinkBase("the mailer"); err == nil || !strings.Contains(err.Error(), "the mailer") {
		t.Errorf("deployed without PUBLIC_BASE_URL: %v", err)
	}
	if got, err := (app.Config{Stage: "prod", PublicBaseURL: "https://x.example/"}).LinkBase("the mailer"); err != nil || got != "https://x.example" {
		t.Errorf("got %q %v", got, err)
	}
	t.Setenv("PORT", "3100")
	if got, err := (app.Config{Stage: "local"}).LinkBase("the mailer"); err != nil || got != "http://127.0.0.1:3100" {
		t.Errorf("local: %q %v", got, err)
	}
}

// bulkResults are a bulk answer's results in one course; an answer without that course's
// results fails the test.
func bulkResults(t *testing.T, r response, course string) []map[string]any {
	t.Helper()
	body, _ := r.json(t).(map[string]any)
	courses, _ := body["courses"].(map[string]any)
	c, _ := courses[course].(map[string]any)
	list, ok := c["results"].([]any)
	if !ok {
		t.Fatalf("no results for %s in %s", course, r.Body)
	}
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			t.Fatalf("result %v", x)
		}
		out = append(out, m)
	}
	return out
}
