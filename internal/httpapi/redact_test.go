package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Invitation tokens are credentials: no access-log line holds one.
func TestAccessLogRedactsTokens(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	ok := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
	h, err := Handler(log, []Route{{"Page", "GET", "/invitations/{token}"}, {"Accept", "POST", "/api/invitations/{token}/accept"}},
		map[string]http.HandlerFunc{"Page": ok, "Accept": ok})
	if err != nil {
		t.Fatal(err)
	}
	token := "Kq3Zx0mH1vB2nC4dE5fG6hI7jJ8kL9lM0nN1oO2pP3q"
	for _, rq := range []*http.Request{
		httptest.NewRequest("GET", "/invitations/"+token, nil),
		httptest.NewRequest("POST", "/api/invitations/"+token+"/accept", nil),
		httptest.NewRequest("GET", "/invitations/"+token+"/nowhere", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), rq)
	}
	if strings.Contains(buf.String(), token) || strings.Count(buf.String(), "[token]") != 3 {
		t.Fatalf("log:\n%s", buf.String())
	}
	if got := RedactPath("/api/courses/course-v1:A+B+C/enrollments"); got != "/api/courses/course-v1:A+B+C/enrollments" {
		t.Fatalf("redacted %q", got)
	}
}
