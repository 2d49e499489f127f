// Command schemathesis fuzzes the local stack against openapi.yaml (make schemathesis; see
// run.sh next to this file). It starts a throwaway stack on free ports (infra/internal/stackup:
// the same gateway, handlers and stream runner as `go run ./infra/local run`), seeds it over
// HTTP with a staff token (courses, users, enrollments, open invitations), writes a
// schemathesis.toml whose dictionaries feed those real course keys, usernames, enrollment ids
// and invitation tokens into the path and query parameters some of the time, and runs
//
//	schemathesis run openapi.yaml --url <stack> -H 'Authorization: Bearer <staff>' --max-examples N \
//	  --checks not_a_server_error,response_schema_conformance,status_code_conformance,...
//
// It exits with schemathesis' exit code (non-zero on any failure), or 1 if a function logged an
// error that no response showed (the stream-fed mailer and audit functions). Arguments after
// -- go to `schemathesis run` as they are (a later --checks wins).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/infra/internal/stackup"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// The seed data; openapi.yaml's examples name the first course and alice.
const (
	demoCourse   = "course-v1:edX+DemoX+Demo_Course"
	cohortCourse = "course-v1:edX+Cohorts+2026"
	invitations  = 24 // open invitations whose tokens the fuzzer may use (each is single use)
)

// defaultChecks: no 5xx, every body matches its schema, and every status, content type and
// documented response header is the document's.
const defaultChecks = "not_a_server_error,response_schema_conformance,status_code_conformance," +
	"content_type_conformance,response_headers_conformance"

func main() {
	os.Exit(run())
}

func run() int {
	bin := flag.String("schemathesis", ".venv/bin/schemathesis", "the schemathesis CLI")
	maxExamples := flag.Int("max-examples", 30, "test cases per operation and phase (--max-examples)")
	checks := flag.String("checks", defaultChecks, "schemathesis --checks")
	token := flag.String("token", "", "staff bearer token (default: one like `go run ./infra/local token staff --admin`)")
	port := flag.Int("port", 0, "API port (0 = a free one)")
	seed := flag.String("seed", "", "schemathesis --seed, for a reproducible run")
	workers := flag.String("workers", "1", "schemathesis --workers (more than 1 trips a thread-safety bug in hypothesis' coverage phase)")
	failOnErrors := flag.Bool("fail-on-error-logs", true, "fail if a function logged an error (e.g. the stream-fed mailer), even when every response passed")
	reportDir := flag.String("report-dir", "", "if set, write junit and ndjson reports there")
	verbose := flag.Bool("v", false, "log every request the gateway serves")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	errLog := &errorCounter{Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}), mu: &sync.Mutex{}, seen: map[string]int{}}
	log := slog.New(errLog)

	tplPath, err := samtemplate.Find()
	if err != nil {
		return fail(err)
	}
	root := filepath.Dir(tplPath)
	spec := filepath.Join(root, "openapi.yaml")
	st := *bin
	if !filepath.IsAbs(st) && strings.ContainsRune(st, filepath.Separator) {
		st = filepath.Join(root, st)
	}
	if _, err := os.Stat(st); err != nil {
		return fail(fmt.Errorf("%s: %w (make deps installs it into .venv)", st, err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	t0 := time.Now()
	stack, err := stackup.Start(ctx, stackup.Options{Port: *port, TablePrefix: "rollcall-schemathesis", Logger: log, FunctionLogger: log})
	if err != nil {
		return fail(err)
	}
	defer stack.Close()
	if *token == "" {
		if *token, err = stack.Token("staff", true); err != nil {
			return fail(err)
		}
	}
	fmt.Printf("local stack at %s (DynamoDB %s, SES %s, table %s) in %.1fs\n",
		stack.URL, stack.DynamoDBEndpoint, stack.SESEndpoint, stack.TableName, time.Since(t0).Seconds())

	s := &seeder{base: stack.URL, token: *token, client: &http.Client{Timeout: 30 * time.Second}}
	data, err := s.seed()
	if err != nil {
		return fail(fmt.Errorf("seeding: %w", err))
	}
	fmt.Printf("seeded %d courses, %d users, %d enrollment ids, %d invitation tokens\n",
		len(data.courses), len(data.users), len(data.ids), len(data.tokens))

	dir, err := os.MkdirTemp("", "rollcall-schemathesis-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "schemathesis.toml")
	if err := os.WriteFile(cfgPath, []byte(data.config()), 0o644); err != nil {
		return fail(err)
	}

	args := []string{"--config-file", cfgPath, "run", spec,
		"--url", stack.URL,
		"--header", "Authorization: Bearer " + *token,
		"--checks", *checks,
		"--max-examples", strconv.Itoa(*maxExamples),
		"--workers", *workers,
		"--request-timeout", "30",
		"--generation-database", "none",
		"--no-color",
		"--suppress-health-check", "all",
	}
	if *seed != "" {
		args = append(args, "--seed", *seed)
	}
	if *reportDir != "" {
		args = append(args, "--report", "junit,ndjson", "--report-dir", *reportDir)
	}
	args = append(args, flag.Args()...)
	fmt.Printf("%s %s\n\n", st, strings.Join(redact(args, *token), " "))

	cmd := exec.CommandContext(ctx, st, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SCHEMATHESIS_HOOKS="+filepath.Join(root, "infra", "schemathesis", "hooks.py"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case bg := <-stack.Err():
		_ = cmd.Process.Signal(os.Interrupt)
		<-done
		return fail(bg)
	}
	time.Sleep(2 * time.Second) // let the stream runner deliver the last changes (mail, audit)
	errCount := errLog.report(os.Stderr)
	var exit *exec.ExitError
	switch {
	case err == nil && errCount > 0 && *failOnErrors:
		fmt.Fprintf(os.Stderr, "\nschemathesis: no failures, but the functions logged %d errors (above)\n", errCount)
		return 1
	case err == nil:
		fmt.Println("\nschemathesis: no failures")
		return 0
	case errors.As(err, &exit):
		code := exit.ExitCode()
		if code <= 0 {
			code = 1
		}
		fmt.Fprintf(os.Stderr, "\nschemathesis: exit status %d\n", code)
		return code
	default:
		return fail(err)
	}
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "schemathesis driver:", err)
	return 1
}

// redact keeps the token out of the printed command line.
func redact(args []string, token string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, token, "$TOKEN")
		if strings.ContainsAny(out[i], " '\"") {
			out[i] = strconv.Quote(out[i])
		}
	}
	return out
}

var requestIDs = regexp.MustCompile(`RequestID: [0-9a-fA-F-]+`)

// errorCounter passes records on and remembers the messages logged at error level, so that a
// failure no HTTP response shows (the stream-fed mailer, the audit function) fails the run too.
type errorCounter struct {
	slog.Handler
	mu   *sync.Mutex // shared by the handlers WithAttrs/WithGroup derive
	seen map[string]int
}

func (h *errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		key := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "function" || a.Key == "error" || a.Key == "err" {
				key += " " + a.Key + "=" + a.Value.String()
			}
			return true
		})
		key = requestIDs.ReplaceAllString(key, "RequestID: *")
		if len(key) > 300 {
			key = key[:300] + "..."
		}
		h.seen[key]++
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h *errorCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &errorCounter{Handler: h.Handler.WithAttrs(as), mu: h.mu, seen: h.seen}
}

func (h *errorCounter) WithGroup(name string) slog.Handler {
	return &errorCounter{Handler: h.Handler.WithGroup(name), mu: h.mu, seen: h.seen}
}

// report prints the distinct error messages and returns how many errors were logged.
func (h *errorCounter) report(w io.Writer) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	if len(h.seen) > 0 {
		fmt.Fprintln(w, "\nerrors the functions logged (count, message):")
		keys := make([]string, 0, len(h.seen))
		for k := range h.seen {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %4d  %s\n", h.seen[k], k)
			total += h.seen[k]
		}
	}
	return total
}

// seedData is what the fuzzer's dictionaries offer.
type seedData struct {
	courses, users, emails, ids, tokens []string
}

// config is a schemathesis.toml: dictionaries of real values, bound to parameters with a
// probability, so that part of the generated requests reach existing resources (200s whose
// bodies are checked against the schemas) and the rest stays fuzzed.
func (d *seedData) config() string {
	var b strings.Builder
	b.WriteString("# Written by infra/schemathesis for one run.\n\n[dictionaries]\n")
	dict := func(name string, values []string) {
		q := make([]string, len(values))
		for i, v := range values {
			q[i] = strconv.Quote(v)
		}
		fmt.Fprintf(&b, "%s = { values = [%s] }\n", name, strings.Join(q, ", "))
	}
	dict("courses", d.courses)
	dict("usernames", d.users)
	dict("emails", d.emails)
	dict("enrollment_ids", d.ids)
	dict("tokens", d.tokens)
	identifiers := append(append([]string{}, d.users...), d.emails...)
	identifiers = append(identifiers, "new-learner@example.com", "not an email")
	dict("identifiers", identifiers)
	b.WriteString("\n[parameters]\n")
	bind := func(key, dictName string, p float64) {
		fmt.Fprintf(&b, "%q = { dictionary = %q, probability = %g }\n", key, dictName, p)
	}
	bind("path.course_id", "courses", 0.6)
	bind("query.course_id", "courses", 0.5)
	bind("path.username", "usernames", 0.6)
	bind("query.username", "usernames", 0.3)
	bind("query.email", "emails", 0.3)
	bind("path.id", "enrollment_ids", 0.6)
	bind("path.token", "tokens", 0.6)
	bind("body.courses", "courses", 0.6)
	bind("body.identifiers", "identifiers", 0.5)
	bind("body.username", "usernames", 0.2)
	return b.String()
}

// seeder makes the seed data through the API itself.
type seeder struct {
	base, token string
	client      *http.Client
}

func (s *seeder) seed() (*seedData, error) {
	d := &seedData{courses: []string{demoCourse, cohortCourse}}
	courses := map[string]any{
		demoCourse:   map[string]any{"title": "Demo Course", "cohorts": []string{"cohort1", "cohort2"}, "admins": []string{"carol"}, "invitation_ttl_days": 14},
		cohortCourse: map[string]any{"title": "Cohorts", "cohorts": []string{"cohort1"}},
	}
	for _, c := range d.courses {
		if _, err := s.call("PUT", "/api/courses/"+url.PathEscape(c), courses[c], http.StatusCreated); err != nil {
			return nil, err
		}
	}
	for _, u := range []string{"alice", "carol", "dave"} {
		email := u + "@example.com"
		if _, err := s.call("POST", "/api/users", map[string]any{"username": u, "email": email}, http.StatusCreated); err != nil {
			return nil, err
		}
		d.users = append(d.users, u)
		d.emails = append(d.emails, email)
	}
	// Active enrollments (with cohorts), and invitations made by bulk enroll.
	if _, err := s.call("POST", "/api/bulk_enroll/v1/bulk_enroll/", map[string]any{
		"action": "enroll", "courses": demoCourse + "," + cohortCourse, "cohorts": "cohort1,cohort1",
		"identifiers": "alice, dave, bob@example.com", "auto_enroll": true, "reason": "schemathesis seed",
	}, http.StatusOK); err != nil {
		return nil, err
	}
	if _, err := s.call("POST", "/appsembler/bulk_enroll/", map[string]any{
		"action": "unenroll", "courses": cohortCourse, "identifiers": "dave",
	}, http.StatusOK); err != nil {
		return nil, err
	}
	// Open invitations with their tokens (only the create response shows one).
	for i := range invitations {
		course := d.courses[i%len(d.courses)]
		body, err := s.call("POST", "/api/courses/"+url.PathEscape(course)+"/enrollments",
			map[string]any{"enrollment": map[string]any{"email": fmt.Sprintf("invitee%02d@example.com", i)}}, http.StatusCreated)
		if err != nil {
			return nil, err
		}
		var res struct {
			InvitationURL string `json:"invitation_url"`
		}
		if err := json.Unmarshal(body, &res); err != nil || res.InvitationURL == "" {
			return nil, fmt.Errorf("create enrollment: no invitation_url in %s", body)
		}
		d.tokens = append(d.tokens, res.InvitationURL[strings.LastIndexByte(res.InvitationURL, '/')+1:])
	}
	for _, c := range d.courses {
		body, err := s.call("GET", "/api/courses/"+url.PathEscape(c)+"/enrollments", nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var list []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("list %s: %w", c, err)
		}
		for _, e := range list {
			d.ids = append(d.ids, e.ID)
		}
	}
	if len(d.ids) == 0 {
		return nil, errors.New("no enrollments listed after seeding")
	}
	return d, nil
}

func (s *seeder) call(method, path string, body any, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b, nil
}
