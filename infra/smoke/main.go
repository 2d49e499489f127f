// Command smoke walks rollcall's main user journey against a running stack and cleans up
// after itself:
//
//	go run ./infra/smoke -api https://abc123.execute-api.us-east-1.amazonaws.com -token <staff JWT>
//	go run ./infra/smoke            (a throwaway local stack, as make test runs it)
//
// The journey: put a course; bulk enroll through the Open edX and the Appsembler paths, each
// with and without the trailing slash (API Gateway serves both on the route declared without
// it); list the course's invitations; create one invitation (Redu) and open its page; accept
// it; decline another; unenroll everyone it invited (bulk unenroll and DELETE) and check that
// nothing it made is left open. Every address is an SES mailbox-simulator address
// (success+<label>@simulator.amazonses.com), which SES accepts even in the sandbox and
// never delivers to a person; the course is always the same one, so repeated runs leave one
// course and revoked invitations behind, nothing open.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rollcall/rollcall/infra/internal/stackup"
	"github.com/rollcall/rollcall/internal/auth"
)

// SmokeCourse is the one course every run uses.
const SmokeCourse = "course-v1:rollcall+smoke+journey"

func main() {
	api := flag.String("api", "", "base URL of a deployed API (default: start a throwaway local stack)")
	token := flag.String("token", "", "a staff bearer token for -api")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *api, *token); err != nil {
		fmt.Fprintln(os.Stderr, "smoke: FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, api, token string) error {
	if api == "" {
		st, err := stackup.Start(ctx, stackup.Options{})
		if err != nil {
			return fmt.Errorf("local stack: %w", err)
		}
		defer st.Close()
		if token, err = auth.IssueLocal([]byte(st.JWTSecret), "smoke-staff", "smoke-staff@example.com", true, time.Hour); err != nil {
			return err
		}
		api = st.URL
		fmt.Println("smoke: local stack at", api)
	} else if token == "" {
		return errors.New("-token is required with -api (a staff bearer token)")
	}
	j := &journey{api: strings.TrimRight(api, "/"), token: token, client: &http.Client{Timeout: 30 * time.Second}, run: runID()}
	err := j.walk(ctx)
	if cerr := j.cleanUp(ctx); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Printf("smoke: passed (%d requests)\n", j.requests)
	return nil
}

type journey struct {
	api, token string
	client     *http.Client
	run        string
	invited    []string // addresses this run invited
	requests   int
}

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// address is a mailbox-simulator address unique to this run.
func (j *journey) address(label string) string {
	return "success+rc-" + j.run + "-" + label + "@simulator.amazonses.com"
}

func (j *journey) walk(ctx context.Context) error {
	course := url.PathEscape(SmokeCourse)
	if err := j.expect(ctx, "PUT", "/api/courses/"+course, map[string]any{
		"title": "rollcall smoke test (safe to ignore)", "invitation_ttl_days": 1}, true, 200, 201); err != nil {
		return err
	}
	if err := j.expect(ctx, "GET", "/api/courses/"+course, nil, true, 200); err != nil {
		return err
	}

	// Bulk enroll: both products' paths, with and without the trailing slash.
	for i, path := range []string{
		"/api/bulk_enroll/v1/bulk_enroll/", "/api/bulk_enroll/v1/bulk_enroll",
		"/appsembler/bulk_enroll/", "/appsembler/bulk_enroll",
	} {
		who := j.address(fmt.Sprintf("bulk%d", i))
		var out struct {
			Courses map[string]struct {
				Results []struct {
					Identifier string `json:"identifier"`
					After      struct {
						Allowed bool `json:"allowed"`
					} `json:"after"`
				} `json:"results"`
			} `json:"courses"`
		}
		if err := j.call(ctx, "POST", path, map[string]any{
			"action": "enroll", "courses": SmokeCourse, "identifiers": who,
			"auto_enroll": true, "email_students": false}, true, &out, 200); err != nil {
			return err
		}
		res := out.Courses[SmokeCourse].Results
		if len(res) != 1 || res[0].Identifier != who || !res[0].After.Allowed {
			return fmt.Errorf("POST %s: want %s invited, got %+v", path, who, out)
		}
		j.invited = append(j.invited, who)
	}

	// The course's open invitations list them.
	var list []struct {
		Email string `json:"email"`
		State string `json:"state"`
	}
	if err := j.call(ctx, "GET", "/api/courses/"+course+"/enrollments?state=invited&page_size=1000", nil, true, &list, 200); err != nil {
		return err
	}
	for _, who := range j.invited {
		if !containsEmail(list, who) {
			return fmt.Errorf("the course list (state=invited) lacks %s", who)
		}
	}

	// One invitation (Redu): its page, then accept it; another is declined.
	accepted, err := j.invite(ctx, course, "accept")
	if err != nil {
		return err
	}
	page, err := j.raw(ctx, "GET", accepted, nil, false)
	if err != nil {
		return err
	}
	if page.status != 200 || !strings.Contains(page.contentType, "text/html") || !strings.Contains(page.body, "rollcall smoke test") {
		return fmt.Errorf("invitation page: %d %s", page.status, page.contentType)
	}
	if err := j.expect(ctx, "POST", strings.Replace(accepted, "/invitations/", "/api/invitations/", 1)+"/accept", map[string]any{}, false, 200); err != nil {
		return err
	}
	declined, err := j.invite(ctx, course, "decline")
	if err != nil {
		return err
	}
	if err := j.expect(ctx, "POST", strings.Replace(declined, "/invitations/", "/api/invitations/", 1)+"/decline", nil, false, 200); err != nil {
		return err
	}
	return nil
}

// invite creates one invitation and returns its invitation_url (path and all).
func (j *journey) invite(ctx context.Context, course, label string) (string, error) {
	who := j.address(label)
	var res struct {
		InvitationURL string `json:"invitation_url"`
	}
	if err := j.call(ctx, "POST", "/api/courses/"+course+"/enrollments", map[string]any{
		"enrollment": map[string]any{"email": who}}, true, &res, 201); err != nil {
		return "", err
	}
	j.invited = append(j.invited, who)
	u, err := url.Parse(res.InvitationURL)
	if err != nil || !strings.Contains(u.Path, "/invitations/") {
		return "", fmt.Errorf("invitation_url %q", res.InvitationURL)
	}
	return u.Path, nil
}

// cleanUp unenrolls every address this run invited (bulk unenroll, then DELETE on whatever
// is still open) and checks that the course has none of them open.
func (j *journey) cleanUp(ctx context.Context) error {
	if len(j.invited) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	course := url.PathEscape(SmokeCourse)
	if err := j.expect(ctx, "POST", "/api/bulk_enroll/v1/bulk_enroll/", map[string]any{
		"action": "unenroll", "courses": SmokeCourse, "identifiers": j.invited}, true, 200); err != nil {
		return fmt.Errorf("clean-up: %w", err)
	}
	var list []struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		State    string `json:"state"`
		IsActive bool   `json:"is_active"`
	}
	if err := j.call(ctx, "GET", "/api/courses/"+course+"/enrollments?page_size=1000", nil, true, &list, 200); err != nil {
		return fmt.Errorf("clean-up: %w", err)
	}
	for _, e := range list {
		if !strings.Contains(e.Email, "rc-"+j.run+"-") {
			continue
		}
		if e.State == "invited" || e.State == "active" {
			if err := j.expect(ctx, "DELETE", "/api/enrollments/"+url.PathEscape(e.ID), nil, true, 200, 204); err != nil {
				return fmt.Errorf("clean-up: %w", err)
			}
		}
	}
	var open []struct {
		Email string `json:"email"`
	}
	if err := j.call(ctx, "GET", "/api/courses/"+course+"/enrollments?state=invited&page_size=1000", nil, true, &open, 200); err != nil {
		return fmt.Errorf("clean-up: %w", err)
	}
	for _, e := range open {
		if strings.Contains(e.Email, "rc-"+j.run+"-") {
			return fmt.Errorf("clean-up: %s is still invited", e.Email)
		}
	}
	fmt.Printf("smoke: cleaned up %d invitations\n", len(j.invited))
	return nil
}

type response struct {
	status      int
	contentType string
	body        string
}

func (j *journey) raw(ctx context.Context, method, path string, body any, authed bool) (*response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, j.api+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authed {
		req.Header.Set("Authorization", "Bearer "+j.token)
	}
	start := time.Now()
	resp, err := j.client.Do(req)
	j.requests++
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, redact(path), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	fmt.Printf("smoke: %-6s %-60s %d  %4d ms\n", method, redact(path), resp.StatusCode, time.Since(start).Milliseconds())
	return &response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(b)}, nil
}

func (j *journey) call(ctx context.Context, method, path string, body any, authed bool, out any, want ...int) error {
	r, err := j.raw(ctx, method, path, body, authed)
	if err != nil {
		return err
	}
	ok := false
	for _, w := range want {
		ok = ok || r.status == w
	}
	if !ok {
		return fmt.Errorf("%s %s: status %d, want %v: %s", method, redact(path), r.status, want, trim(r.body))
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.body), out); err != nil {
			return fmt.Errorf("%s %s: %w: %s", method, redact(path), err, trim(r.body))
		}
	}
	return nil
}

func (j *journey) expect(ctx context.Context, method, path string, body any, authed bool, want ...int) error {
	return j.call(ctx, method, path, body, authed, nil, want...)
}

// redact keeps invitation tokens out of the output.
func redact(path string) string {
	parts := strings.Split(path, "/")
	for i := 1; i < len(parts); i++ {
		if parts[i-1] == "invitations" && len(parts[i]) > 8 {
			parts[i] = parts[i][:4] + "…"
		}
	}
	return strings.Join(parts, "/")
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func containsEmail[T any](list []T, email string) bool {
	b, _ := json.Marshal(list)
	return bytes.Contains(b, []byte(`"`+email+`"`))
}
