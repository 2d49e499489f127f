package e2e

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

const course = "course-v1:E2E+Invite+2026"

// The whole path of an invitation: bulk enroll with email_students, the mail (rendered by the
// emulator from template.yaml's template) with a working link, the page, the form's accept
// (pending sign-up: no account is created), the dead link afterwards, the sign-up that
// activates it, and the audit trail.
func TestInvitationMailPageAccept(t *testing.T) {
	h := newHarness(t, options{signupURL: "https://id.example.com/register?next=/courses"})
	title := `Intro to <Go> & "Lambda"`
	h.putCourse(course, title)
	addr := strings.ToLower(testenv.Address("invitee"))

	res := h.bulk("enroll", course, []string{addr}, true, false)
	after := res["courses"].(map[string]any)[course].(map[string]any)["results"].([]any)[0].(map[string]any)["after"].(map[string]any)
	if after["allowed"] != true || after["enrollment"] != false {
		t.Fatalf("after = %v, want an open invitation", after)
	}

	mails := testenv.WaitForEmails(t, addr, 1, 20*time.Second)
	m := mails[0]
	if m.Subject != "You have been invited to "+title {
		t.Errorf("subject = %q", m.Subject)
	}
	if m.From != mailFrom {
		t.Errorf("from = %q", m.From)
	}
	link, token := invitationLink(t, m)
	if !strings.HasPrefix(link, h.base+"/invitations/") {
		t.Fatalf("link %s does not point at the API (%s)", link, h.base)
	}
	if !strings.Contains(m.Body.Text, "valid until 7 December 2026, 09:00 UTC") {
		t.Errorf("mail text lacks the expiry:\n%s", m.Body.Text)
	}

	page := h.do(http.MethodGet, link, "", nil)
	mustStatus(t, page, http.StatusOK)
	body := string(page.Body)
	if !strings.Contains(body, html.EscapeString(title)) || strings.Contains(body, "<Go>") {
		t.Errorf("page does not show the escaped title:\n%s", body)
	}
	for _, want := range []string{`id="accept"`, `id="decline"`, `name="viewport"`, "7 December 2026", `id="signup-hint"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `name="username"`) {
		t.Errorf("the page asks for a username:\n%s", body)
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Errorf("page has a script")
	}
	wantHeaders := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	}
	for k, v := range wantHeaders {
		if got := page.Header.Get(k); !strings.HasPrefix(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	acc := h.do(http.MethodPost, link+"/accept", "", url.Values{"username": {"new_learner"}})
	mustStatus(t, acc, http.StatusOK)
	for _, want := range []string{"Invitation accepted", `id="pending"`, html.EscapeString(title), addr,
		`href="https://id.example.com/register?next=/courses"`} {
		if !strings.Contains(string(acc.Body), want) {
			t.Errorf("accept page lacks %s:\n%s", want, acc.Body)
		}
	}
	e := h.enrollment(course, addr)
	if e.State != rollcall.StateInvited || e.Username != "" || !e.AutoEnroll || e.AcceptedAt.IsZero() {
		t.Fatalf("after accept: %+v", e)
	}
	for _, name := range []string{"new_learner", rollcall.NormalizeEmail(addr)} {
		if _, err := h.deps.Store.GetUser(context.Background(), name); err == nil {
			t.Fatalf("accepting registered %s", name)
		}
	}
	if _, err := h.deps.Store.GetUserByEmail(context.Background(), addr); err == nil {
		t.Fatalf("accepting registered an account for %s", addr)
	}

	// The link is dead now: 410 everywhere, and the page says so.
	gone := h.do(http.MethodPost, "/api/invitations/"+token+"/accept", "", nil)
	mustStatus(t, gone, http.StatusGone)
	if got := gone.json(t)["detail"]; got != "This invitation is no longer valid." {
		t.Errorf("detail = %v", got)
	}
	page = h.do(http.MethodGet, link, "", nil)
	mustStatus(t, page, http.StatusGone)
	if !strings.Contains(string(page.Body), "This invitation is no longer valid.") {
		t.Errorf("gone page:\n%s", page.Body)
	}

	// The real sign-up activates it.
	h.createUser("new_learner", addr)
	if e = h.enrollment(course, addr); e.State != rollcall.StateActive || e.Username != "new_learner" {
		t.Fatalf("after sign-up: %+v", e)
	}

	// The audit trail, materialized from the stream: invited, accepted pending sign-up, then
	// enrolled by the registration.
	var entries []*rollcall.AuditEntry
	waitFor(t, 20*time.Second, "three audit entries", func() bool {
		var err error
		entries, err = h.deps.Store.AuditEntries(context.Background(), e.ID)
		return err == nil && len(entries) >= 3
	})
	want := []struct {
		tr, src    string
		from, to   rollcall.State
		by, reason string
	}{
		{rollcall.UnenrolledToAllowed, rollcall.SourceBulk, "", rollcall.StateInvited, "staff", "e2e test"},
		{rollcall.AllowedToAllowed, rollcall.SourceInvitation, rollcall.StateInvited, rollcall.StateInvited, addr, ""},
		{rollcall.AllowedToEnrolled, rollcall.SourceRegistration, rollcall.StateInvited, rollcall.StateActive, "new_learner", ""},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d audit entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		g := entries[i]
		if g.Transition != w.tr || g.Source != w.src || g.StateBefore != w.from || g.StateAfter != w.to || g.By != w.by || g.Reason != w.reason || g.CourseID != course || g.Email != addr {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

// The JSON API: accept signed in, signed in with another email, anonymous for an account,
// anonymous pending sign-up, decline, and the answers for unknown, expired, revoked and used
// tokens.
func TestInvitationAPI(t *testing.T) {
	h := newHarness(t, options{noStreams: true, signupURL: "https://id.example.com/signup"})
	h.putCourse(course, "API course")
	a := addresses("api", 8)
	h.bulk("enroll", course, a, false, false)

	t.Run("signed in", func(t *testing.T) {
		r := h.do(http.MethodPost, "/api/invitations/"+h.tokenOf(course, a[0])+"/accept", bearerFor(t, "chosen.name", strings.ToUpper(a[0])), nil)
		mustStatus(t, r, http.StatusOK)
		got := r.json(t)
		if got["state"] != "active" || got["username"] != "chosen.name" || got["is_active"] != true || got["email"] != a[0] {
			t.Fatalf("resource = %v", got)
		}
		if got["expires_at"] != nil || got["signup_url"] != nil {
			t.Errorf("resource = %v", got)
		}
		if _, err := h.deps.Store.GetUser(context.Background(), "chosen.name"); err == nil {
			t.Errorf("a signed-in accept registered an account")
		}
	})
	t.Run("signed in with another email", func(t *testing.T) {
		tok := h.tokenOf(course, a[1])
		r := h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", bearerFor(t, "mallory", "mallory@example.com"), nil)
		mustStatus(t, r, http.StatusForbidden)
		if got := r.json(t)["detail"]; got != "This invitation was sent to another email address." {
			t.Errorf("detail = %v", got)
		}
		r = h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "not-a-jwt", nil)
		mustStatus(t, r, http.StatusUnauthorized)
		if e := h.enrollment(course, a[1]); e.State != rollcall.StateInvited || e.Version != 1 {
			t.Fatalf("a refused accept changed it: %+v", e)
		}
	})
	t.Run("anonymous with an account", func(t *testing.T) {
		h.createUser("has_account", a[2])
		r := h.do(http.MethodPost, "/api/invitations/"+h.tokenOf(course, a[2])+"/accept", "", nil)
		mustStatus(t, r, http.StatusOK)
		if got := r.json(t); got["state"] != "active" || got["username"] != "has_account" {
			t.Fatalf("resource = %v", got)
		}
	})
	t.Run("anonymous pending sign-up", func(t *testing.T) {
		tok := h.tokenOf(course, a[6])
		// A chosen username is no longer a thing: nothing is registered under it.
		r := h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "", map[string]any{"username": "staff"})
		mustStatus(t, r, http.StatusOK)
		got := r.json(t)
		if got["state"] != "invited" || got["auto_enroll"] != true || got["accepted_at"] == nil || got["username"] != nil ||
			got["signup_url"] != "https://id.example.com/signup" {
			t.Fatalf("resource = %v", got)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
		}
		if _, err := h.deps.Store.GetUser(context.Background(), "staff"); err == nil {
			t.Fatalf("an accept registered the username staff")
		}
		if _, err := h.deps.Store.GetUserByEmail(context.Background(), a[6]); err == nil {
			t.Fatalf("an accept registered an account")
		}
		// Used: a second answer is 410.
		r = h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "", nil)
		mustStatus(t, r, http.StatusGone)
		// The real sign-up is not refused, and activates it.
		h.createUser("real_owner", a[6])
		if e := h.enrollment(course, a[6]); e.State != rollcall.StateActive || e.Username != "real_owner" {
			t.Fatalf("after sign-up: %+v", e)
		}
	})
	t.Run("decline", func(t *testing.T) {
		tok := h.tokenOf(course, a[3])
		r := h.do(http.MethodPost, "/api/invitations/"+tok+"/decline", "", nil)
		mustStatus(t, r, http.StatusOK)
		if got := r.json(t); got["state"] != "declined" || got["is_active"] != false {
			t.Fatalf("resource = %v", got)
		}
		for _, op := range []string{"accept", "decline"} {
			r = h.do(http.MethodPost, "/api/invitations/"+tok+"/"+op, "", nil)
			mustStatus(t, r, http.StatusGone)
			if got := r.json(t)["detail"]; got != "This invitation is no longer valid." {
				t.Errorf("%s after decline: detail = %v", op, got)
			}
		}
	})
	t.Run("revoked", func(t *testing.T) {
		tok := h.tokenOf(course, a[4])
		h.bulk("unenroll", course, []string{a[4]}, false, false)
		r := h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "", nil)
		mustStatus(t, r, http.StatusGone)
		if got := r.json(t)["detail"]; got != "This invitation is no longer valid." {
			t.Errorf("detail = %v", got)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		for _, tok := range []string{"short", strings.Repeat("A", 43), strings.Repeat("A", 42) + "*", strings.Repeat("x", 44)} {
			r := h.do(http.MethodPost, "/api/invitations/"+url.PathEscape(tok)+"/accept", "", nil)
			mustStatus(t, r, http.StatusNotFound)
			if got := r.json(t)["detail"]; got != "Not found." {
				t.Errorf("detail = %v", got)
			}
			p := h.do(http.MethodGet, "/invitations/"+url.PathEscape(tok), "", nil)
			mustStatus(t, p, http.StatusNotFound)
		}
	})
	t.Run("expired", func(t *testing.T) {
		tok := h.tokenOf(course, a[5])
		h.advance(15 * 24 * time.Hour)
		defer h.advance(-15 * 24 * time.Hour)
		r := h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "", nil)
		mustStatus(t, r, http.StatusGone)
		if got := r.json(t)["detail"]; got != "This invitation has expired." {
			t.Errorf("detail = %v", got)
		}
		r = h.do(http.MethodPost, "/api/invitations/"+tok+"/decline", "", nil)
		mustStatus(t, r, http.StatusGone)
		p := h.do(http.MethodGet, "/invitations/"+tok, "", nil)
		mustStatus(t, p, http.StatusGone)
		if !strings.Contains(string(p.Body), "This invitation has expired.") {
			t.Errorf("page:\n%s", p.Body)
		}
		// After the expiry job, still 410 expired.
		if _, err := h.deps.Service.ExpireDue(context.Background(), h.clock(), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if e := h.enrollment(course, a[5]); e.State != rollcall.StateExpired {
			t.Fatalf("state = %s", e.State)
		}
		r = h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "", nil)
		mustStatus(t, r, http.StatusGone)
		if got := r.json(t)["detail"]; got != "This invitation has expired." {
			t.Errorf("detail after the job = %v", got)
		}
	})
}

// An invitee who registered in the meantime: the page names the account, accepting uses it;
// an auto-enroll invitation accepted through the page without an account waits for the sign-up.
func TestInvitationRegisteredAndAutoEnroll(t *testing.T) {
	h := newHarness(t, options{noStreams: true})
	h.putCourse(course, "Registered course")
	a := addresses("reg", 2)
	h.bulk("enroll", course, a[:1], false, false)
	h.bulk("enroll", course, a[1:], false, true)

	tok := h.tokenOf(course, a[0])
	h.createUser("early_bird", a[0])
	if e := h.enrollment(course, a[0]); e.State != rollcall.StateInvited || e.Username != "early_bird" {
		t.Fatalf("after sign-up: %s %q", e.State, e.Username)
	}
	page := h.do(http.MethodGet, "/invitations/"+tok, "", nil)
	mustStatus(t, page, http.StatusOK)
	if strings.Contains(string(page.Body), `name="username"`) || !strings.Contains(string(page.Body), "early_bird") {
		t.Errorf("page for a registered invitee:\n%s", page.Body)
	}
	r := h.do(http.MethodPost, "/api/invitations/"+tok+"/accept", "", nil)
	mustStatus(t, r, http.StatusOK)
	if got := r.json(t); got["username"] != "early_bird" || got["state"] != "active" {
		t.Fatalf("resource = %v", got)
	}

	tok = h.tokenOf(course, a[1])
	r = h.do(http.MethodPost, "/invitations/"+tok+"/accept", "", url.Values{})
	mustStatus(t, r, http.StatusOK)
	if e := h.enrollment(course, a[1]); e.State != rollcall.StateInvited || e.AcceptedAt.IsZero() {
		t.Fatalf("auto-enroll accept: %+v", e)
	}
	h.createUser("auto_one", a[1])
	if e := h.enrollment(course, a[1]); e.State != rollcall.StateActive || e.Username != "auto_one" {
		t.Fatalf("after sign-up: %s %q", e.State, e.Username)
	}
}

// Two concurrent accepts (and an accept racing a decline) of one token: exactly one wins.
func TestInvitationConcurrentAnswers(t *testing.T) {
	h := newHarness(t, options{noStreams: true})
	h.putCourse(course, "Race course")
	a := addresses("race", 6)
	h.bulk("enroll", course, a, false, false)
	for i, addr := range a {
		tok := h.tokenOf(course, addr)
		paths := [2]string{"/api/invitations/" + tok + "/accept", "/api/invitations/" + tok + "/accept"}
		bodies := [2]any{nil, nil}
		switch i % 3 {
		case 1: // both pending sign-up, with (ignored) usernames
			bodies = [2]any{map[string]any{"username": "racer_a" + string(rune('0'+i))}, map[string]any{"username": "racer_b" + string(rune('0'+i))}}
		case 2: // accept against decline
			paths[1] = "/api/invitations/" + tok + "/decline"
		}
		var wg sync.WaitGroup
		var rs [2]response
		start := make(chan struct{})
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rs[j] = h.do(http.MethodPost, paths[j], "", bodies[j])
			}()
		}
		close(start)
		wg.Wait()
		ok, gone := 0, 0
		for _, r := range rs {
			switch r.Status {
			case http.StatusOK:
				ok++
			case http.StatusGone:
				gone++
				if d := r.json(t)["detail"]; d != "This invitation is no longer valid." {
					t.Errorf("loser's detail = %v", d)
				}
			default:
				t.Errorf("status %s", r)
			}
		}
		if ok != 1 || gone != 1 {
			t.Fatalf("round %d: %d ok, %d gone: %v %v", i, ok, gone, rs[0], rs[1])
		}
		e := h.enrollment(course, addr)
		if !(e.State == rollcall.StateInvited && !e.AcceptedAt.IsZero()) && e.State != rollcall.StateDeclined {
			t.Fatalf("round %d: %+v", i, e)
		}
		if _, err := h.deps.Store.GetUserByEmail(context.Background(), addr); err == nil {
			t.Fatalf("round %d: an accept registered an account", i)
		}
	}
}

// The form flow's error pages and the escaping of what the user typed.
func TestInvitationFormErrorsEscape(t *testing.T) {
	h := newHarness(t, options{noStreams: true})
	title := `<script>alert("x")</script> Hacking & Co`
	h.putCourse(course, title)
	a := addresses("form", 1)
	h.bulk("enroll", course, a, false, false)
	tok := h.tokenOf(course, a[0])

	page := h.do(http.MethodGet, "/invitations/"+tok, "", nil)
	mustStatus(t, page, http.StatusOK)
	body := string(page.Body)
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Hacking &amp; Co") {
		t.Fatalf("title not escaped:\n%s", body)
	}

	var r response
	r = h.do(http.MethodPost, "/invitations/"+tok+"/decline", "", url.Values{})
	if r.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("page without CSP")
	}
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), "Invitation declined") {
		t.Errorf("decline page:\n%s", r.Body)
	}
	r = h.do(http.MethodPost, "/invitations/"+tok+"/accept", "", url.Values{"username": {"x"}})
	mustStatus(t, r, http.StatusGone)
	if !strings.Contains(string(r.Body), "This invitation is no longer valid.") || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("gone page:\n%s", r.Body)
	}
}
