package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

func TestInvitationPageEscapesAndHeaders(t *testing.T) {
	evil := `<script>alert('x')</script>"><img src=x onerror=alert(1)>`
	inv := &rollcall.Invitation{
		Enrollment: &rollcall.Enrollment{ID: strings.Repeat("A", 32), Email: "a@example.com", ExpiresAt: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)},
		Course:     &rollcall.Course{ID: "course-v1:A+B+C", Title: evil},
	}
	rec := httptest.NewRecorder()
	writePage(rec, http.StatusBadRequest, invitationView(inv, "tok/accept", "tok/decline", evil))
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	for _, bad := range []string{"<script", "<img", `"><`} {
		if strings.Contains(body, bad) {
			t.Fatalf("page contains %q:\n%s", bad, body)
		}
	}
	for _, want := range []string{"&lt;script&gt;", `action="tok/accept"`, `action="tok/decline"`, "Monday, 7 December 2026, 09:00 UTC",
		`datetime="2026-12-07T09:00:00Z"`, `name="viewport"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	h := rec.Header()
	for k, v := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	} {
		if !strings.HasPrefix(h.Get(k), v) {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
}

func TestPendingPageEscapes(t *testing.T) {
	evil := `"><script>alert(1)</script>`
	rec := httptest.NewRecorder()
	writePage(rec, http.StatusOK, pageView{Title: "Invitation accepted", Kind: "pending", CourseTitle: evil, CourseID: "c",
		Email: evil + "@example.com", SignupURL: "https://id.example.com/?a=1&b=" + evil})
	body := rec.Body.String()
	if strings.Contains(body, "<script") || !strings.Contains(body, `href="https://id.example.com/?a=1&amp;b=&#34;&gt;&lt;script&gt;`) {
		t.Fatalf("page:\n%s", body)
	}
}
