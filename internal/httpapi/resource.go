package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Link is a Redu-style hypermedia link.
type Link struct {
	Rel  string  `json:"rel"`
	Href *string `json:"href"`
}

// EnrollmentResource is an enrollment as the Redu-style API shows it (docs/api.md#listing).
type EnrollmentResource struct {
	ID            string  `json:"id"`
	CourseID      string  `json:"course_id"`
	Email         string  `json:"email"`
	Username      *string `json:"username"`
	State         string  `json:"state"`
	Role          string  `json:"role"`
	Mode          string  `json:"mode"`
	IsActive      bool    `json:"is_active"`
	AutoEnroll    bool    `json:"auto_enroll"`
	Cohort        *string `json:"cohort"`
	CreatedAt     string  `json:"created_at"`
	UpdatedAt     string  `json:"updated_at"`
	ExpiresAt     *string `json:"expires_at"`
	AcceptedAt    *string `json:"accepted_at,omitempty"`
	EndAt         *string `json:"end_at,omitempty"`
	LastSentAt    *string `json:"last_sent_at,omitempty"`
	SendCount     int     `json:"send_count,omitempty"`
	Links         []Link  `json:"links"`
	InvitationURL string  `json:"invitation_url,omitempty"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// baseURL is where links point: PUBLIC_BASE_URL, else the request's own origin.
func (a *API) baseURL(r *http.Request) string {
	if a.BaseURL != "" {
		return strings.TrimRight(a.BaseURL, "/")
	}
	scheme := "https"
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = p
	} else if r.TLS == nil && (strings.HasPrefix(r.Host, "127.0.0.1") || strings.HasPrefix(r.Host, "localhost")) {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

// Resource renders an enrollment; now decides whether an open invitation has expired.
func (a *API) Resource(r *http.Request, e *rollcall.Enrollment, now time.Time) EnrollmentResource {
	base := a.baseURL(r)
	id := a.Svc.PublicID(e)
	self := base + "/api/enrollments/" + id
	course := base + "/api/courses/" + url.PathEscape(e.CourseID)
	var user *string
	if e.Username != "" {
		u := base + "/api/users/" + url.PathEscape(e.Username)
		user = &u
	}
	res := EnrollmentResource{
		ID: id, CourseID: e.CourseID, Email: e.Email, Username: optional(e.Username),
		State: string(e.Effective(now)), Role: e.Role, Mode: e.Mode, IsActive: e.IsActive(),
		AutoEnroll: e.AutoEnroll, Cohort: optional(e.Cohort),
		CreatedAt: rfc3339(e.CreatedAt), UpdatedAt: rfc3339(e.UpdatedAt),
		Links: []Link{{Rel: "self", Href: &self}, {Rel: "course", Href: &course}, {Rel: "user", Href: user}},
	}
	if !e.ExpiresAt.IsZero() {
		x := rfc3339(e.ExpiresAt)
		res.ExpiresAt = &x
	}
	if !e.AcceptedAt.IsZero() {
		x := rfc3339(e.AcceptedAt)
		res.AcceptedAt = &x
	}
	if !e.EndAt.IsZero() {
		x := rfc3339(e.EndAt)
		res.EndAt = &x
	}

	return res
}

// InvitationURL is the page a token opens.
func (a *API) InvitationURL(r *http.Request, token string) string {
	return a.baseURL(r) + "/invitations/" + token
}
