package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/app/mail"
	"github.com/rollcall/rollcall/internal/auth"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/stream"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	jwtSecret     = "e2e-jwt-secret"
	signingSecret = "e2e-signing-secret-0123456789abcdef"
	mailFrom      = "no-reply@rollcall.test"
)

// options shape a harness.
type options struct {
	// sesEndpoint overrides the shared emulator (a test that stops its own).
	sesEndpoint string
	// noStreams leaves the table's stream unread (no mail, no audit).
	noStreams bool
	// instrument builds the mailer here, so the test can count SES calls and see every batch
	// response; wrap may replace its sender.
	instrument bool
	wrap       func(*ses.Sender) stream.MailSender
	// redeliver runs every mailer batch twice, as an at-least-once event source may.
	redeliver bool
	mailRate  float64
	logLevel  slog.Level
	// signupURL is SIGNUP_URL.
	signupURL string
}

// harness is the local stack of one test: a fresh table, the real handlers behind the API
// Gateway stand-in on an httptest server, and the stream runner feeding the mailer and audit
// functions.
type harness struct {
	t      *testing.T
	cfg    app.Config
	deps   *app.Deps
	roles  *localiam.Roles
	server *httptest.Server
	base   string
	table  string

	mu  sync.Mutex
	now time.Time

	mailer    *stream.Mailer
	sender    *ses.Sender
	batches   []mailBatch
	firstMail time.Time
}

// mailBatch is one mailer invocation as the stream runner saw it.
type mailBatch struct {
	records  int
	failures int
	stats    stream.MailStats
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	env := testenv.Start(t)
	var tableOpts []localstack.TableOption
	if o.noStreams {
		tableOpts = append(tableOpts, localstack.WithoutStream())
	}
	_, table := testenv.NewTable(t, tableOpts...)
	h := &harness{t: t, table: table, now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	sesEndpoint := env.SESEndpoint
	if o.sesEndpoint != "" {
		sesEndpoint = o.sesEndpoint
	}
	rate := o.mailRate
	if rate == 0 {
		rate = 1000
	}
	level := o.logLevel
	if level == 0 {
		level = slog.LevelWarn
	}
	var handler http.Handler = http.NotFoundHandler()
	h.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.server.Close)
	h.base = h.server.URL
	h.cfg = app.Config{
		Stage: "local", TableName: table, Region: "us-east-1",
		DynamoDBEndpoint: env.DynamoDBEndpoint, SESEndpoint: sesEndpoint,
		JWTSecret: jwtSecret, SigningSecret: signingSecret,
		PublicBaseURL: h.base, MailFrom: mailFrom, MailTemplatePrefix: testenv.MailTemplatePrefix,
		SignupURL:    o.signupURL,
		MailSendRate: rate,
		Now:          h.clock,
		Logger:       slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: level})),
	}
	// Every function runs with its own IAM policy from template.yaml, as in AWS; h.deps (the
	// test's own access to the table) is not a function and has none.
	roles, err := localiam.FromTemplate(env.Template, localiam.LocalValues(h.cfg.Stage, table, mailFrom))
	if err != nil {
		t.Fatal(err)
	}
	h.roles = roles
	d, err := app.Build(context.Background(), h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.deps = d
	if o.instrument {
		md, err := app.Build(context.Background(), h.functionConfig("MailerFunction"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.NewMailer(context.Background(), md)
		if err != nil {
			t.Fatal(err)
		}
		h.sender = m.Sender.(*ses.Sender)
		if o.wrap != nil {
			m.Sender = o.wrap(h.sender)
		}
		h.mailer = m
	}
	lookup := func(ctx context.Context, id string) (any, error) {
		if id == "MailerFunction" && h.mailer != nil {
			return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				resp, st := h.mailer.Process(ctx, ev)
				h.record(len(ev.Records), resp, st)
				if o.redeliver {
					resp2, st2 := h.mailer.Process(ctx, ev)
					h.record(len(ev.Records), resp2, st2)
					resp = mergeFailures(resp, resp2)
				}
				return resp, nil
			}, nil
		}
		return functions.Handler(ctx, id, h.functionConfig(id))
	}
	// The stream runner polls every 50 ms so tests do not wait on make run's 250 ms.
	ls, err := localstack.Assemble(context.Background(), localstack.StackOptions{
		Template: env.Template, Lookup: lookup, DynamoDBEndpoint: env.DynamoDBEndpoint, TableName: table,
		Streams: !o.noStreams, StreamFunctions: []string{"MailerFunction", "AuditFunction"},
		PollInterval: 50 * time.Millisecond, MaxBackoff: time.Second,
		Logger: h.cfg.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = ls.Gateway
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ls.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("local stack: %v", err)
		}
	})
	return h
}

// functionConfig is the configuration a function runs with: the harness's, with the
// function's IAM policy.
func (h *harness) functionConfig(logicalID string) app.Config {
	c := h.cfg
	c.Authorize = h.roles.Middleware(logicalID)
	return c
}

func mergeFailures(a, b events.DynamoDBEventResponse) events.DynamoDBEventResponse {
	seen := map[string]bool{}
	var out events.DynamoDBEventResponse
	for _, f := range append(a.BatchItemFailures, b.BatchItemFailures...) {
		if !seen[f.ItemIdentifier] {
			seen[f.ItemIdentifier] = true
			out.BatchItemFailures = append(out.BatchItemFailures, f)
		}
	}
	return out
}

func (h *harness) record(records int, resp events.DynamoDBEventResponse, st stream.MailStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.Sent > 0 && h.firstMail.IsZero() {
		h.firstMail = time.Now()
	}
	h.batches = append(h.batches, mailBatch{records: records, failures: len(resp.BatchItemFailures), stats: st})
}

func (h *harness) mailBatches() []mailBatch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]mailBatch(nil), h.batches...)
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// testLog sends log lines to t.Log.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func bearer(t testing.TB, username string, staff bool) string {
	t.Helper()
	tok, err := auth.IssueLocal([]byte(jwtSecret), username, username+"@staff.example.com", staff, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// bearerFor is a learner's token with the given email claim.
func bearerFor(t testing.TB, username, email string) string {
	t.Helper()
	tok, err := auth.IssueLocal([]byte(jwtSecret), username, email, false, time.Hour)
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

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return v
}

// do sends a request to the local API. A body that is not a string or url.Values is sent as JSON.
func (h *harness) do(method, path, token string, body any) response {
	h.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(raw), "application/json"
	}
	target := path
	if strings.HasPrefix(path, "/") {
		target = h.base + path
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func mustStatus(t testing.TB, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
}

func (h *harness) putCourse(id, title string) {
	h.t.Helper()
	r := h.do(http.MethodPut, "/api/courses/"+url.PathEscape(id), bearer(h.t, "staff", true),
		map[string]any{"title": title, "invitation_ttl_days": 14})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		h.t.Fatalf("put course: %s", r)
	}
}

// bulk posts a bulk enroll through BulkEnrollFunction.
func (h *harness) bulk(action, course string, identifiers []string, emailStudents, autoEnroll bool) map[string]any {
	h.t.Helper()
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/bulk_enroll/", bearer(h.t, "staff", true), map[string]any{
		"identifiers": strings.Join(identifiers, "\n"), "courses": course, "action": action,
		"email_students": emailStudents, "auto_enroll": autoEnroll, "reason": "e2e test",
	})
	mustStatus(h.t, r, http.StatusOK)
	return r.json(h.t)
}

func (h *harness) createUser(username, email string) {
	h.t.Helper()
	r := h.do(http.MethodPost, "/api/users", bearer(h.t, "staff", true), map[string]any{"username": username, "email": email})
	mustStatus(h.t, r, http.StatusCreated)
}

func (h *harness) enrollment(course, email string) *rollcall.Enrollment {
	h.t.Helper()
	e, err := h.deps.Store.GetEnrollment(context.Background(), rollcall.EnrollmentID(course, email))
	if err != nil {
		h.t.Fatalf("enrollment of %s in %s: %v", email, course, err)
	}
	return e
}

// tokenOf derives an open invitation's token as the mailer does (tests that do not read mail).
func (h *harness) tokenOf(course, email string) string {
	h.t.Helper()
	e := h.enrollment(course, email)
	if e.TokenNonce == "" {
		h.t.Fatalf("%s has no open invitation in %s (state %s)", email, course, e.State)
	}
	return rollcall.InvitationToken([]byte(signingSecret), e.ID, e.TokenNonce)
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+/invitations/([A-Za-z0-9_-]{43})`)

// invitationLink finds the invitation link in a mail's text and HTML parts (both must carry it).
func invitationLink(t testing.TB, m testenv.Email) (link, token string) {
	t.Helper()
	tm := linkRE.FindStringSubmatch(m.Body.Text)
	hm := linkRE.FindStringSubmatch(m.Body.HTML)
	if tm == nil || hm == nil || tm[0] != hm[0] {
		t.Fatalf("no (or different) invitation links in mail %q:\ntext: %s\nhtml: %s", m.Subject, m.Body.Text, m.Body.HTML)
	}
	return tm[0], tm[1]
}

// storeEmails reads GET /store of an emulator.
func storeEmails(endpoint string) ([]testenv.Email, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/store", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var store struct {
		Emails []testenv.Email `json:"emails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&store); err != nil {
		return nil, err
	}
	return store.Emails, nil
}

// countTo counts the mails to each of addrs in a store listing.
func countTo(emails []testenv.Email, addrs map[string]bool) map[string]int {
	n := map[string]int{}
	for _, e := range emails {
		for _, r := range e.Recipients() {
			if addrs[strings.ToLower(r)] {
				n[strings.ToLower(r)]++
			}
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addresses returns n unique addresses.
func addresses(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.ToLower(testenv.Address(fmt.Sprintf("%s%d", prefix, i)))
	}
	return out
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[strings.ToLower(x)] = true
	}
	return m
}
