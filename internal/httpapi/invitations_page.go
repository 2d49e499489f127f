package httpapi

import (
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// The invitation pages are rendered by a small writer rather than html/template: any use of
// text/template or html/template makes the linker keep every exported method of every type
// (they call reflect's MethodByName), which grew each function binary from 11.3 MB to 17 MB,
// past the 15 MB budget (docs/api.md#performance-budgets). Safety comes from the writer's types instead: markup takes
// only the unexported markup type, which string constants convert to implicitly but data
// (a string variable) cannot without an explicit, reviewable conversion; everything else goes
// through text or attr, which escape it. Data appears only in element text and in
// double-quoted attribute values, where HTML-escaping & < > " ' is sufficient.

// pageView is everything the invitation pages show.
type pageView struct {
	Title string
	// Kind: "invitation" (the form), "accepted", "pending" (accepted pending sign-up),
	// "declined" or "error".
	Kind        string
	CourseTitle string
	CourseID    string
	ExpiresAt   string // human-readable UTC
	ExpiresISO  string // RFC 3339, for <time datetime>
	Email       string
	HasAccount  bool
	Username    string // the account (HasAccount)
	SignupURL   string // where to sign up (pending), if configured
	AcceptURL   string
	DeclineURL  string
	Message     string // error pages
}

func invitationView(inv *rollcall.Invitation, acceptURL, declineURL, signupURL string) pageView {
	e := inv.Enrollment
	v := pageView{
		Title: "Invitation to " + inv.Course.Title, Kind: "invitation",
		CourseTitle: inv.Course.Title, CourseID: inv.Course.ID, Email: e.Email,
		HasAccount: inv.HasAccount, Username: inv.Username, SignupURL: signupURL,
		AcceptURL: acceptURL, DeclineURL: declineURL,
	}
	if !e.ExpiresAt.IsZero() {
		v.ExpiresAt = e.ExpiresAt.UTC().Format("Monday, 2 January 2006, 15:04 UTC")
		v.ExpiresISO = e.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return v
}

// pageCSP allows nothing but the page's own inline styles and form posts to itself.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// writePage renders an invitation page with the headers every page carries.
func writePage(w http.ResponseWriter, status int, v pageView) {
	body := renderPage(v)
	h := w.Header()
	tokenHeaders(w)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// markup is trusted HTML: string constants of this file only.
type markup string

// page builds an HTML document.
type page struct{ b strings.Builder }

// markup writes trusted HTML.
func (p *page) markup(m markup) { p.b.WriteString(string(m)) }

// text writes data as element text, escaped.
func (p *page) text(s string) { p.b.WriteString(html.EscapeString(s)) }

// attr writes name="value" with the value escaped.
func (p *page) attr(name markup, value string) {
	p.b.WriteString(" " + string(name) + `="`)
	p.b.WriteString(html.EscapeString(value))
	p.b.WriteString(`"`)
}

func renderPage(v pageView) string {
	p := &page{}
	p.markup(pageHead)
	p.text(v.Title)
	p.markup("</title>\n<style>\n" + pageCSS + "</style>\n</head>\n<body>\n<main>\n<div class=\"card\">\n")
	switch v.Kind {
	case "invitation":
		p.markup("  <h1>You're invited to ")
		p.text(v.CourseTitle)
		p.markup("</h1>\n  <p class=\"muted\">Course ")
		p.text(v.CourseID)
		p.markup(" &middot; invitation for ")
		p.text(v.Email)
		p.markup("</p>\n")
		if v.ExpiresAt != "" {
			p.markup("  <p>This invitation is valid until <time")
			p.attr("datetime", v.ExpiresISO)
			p.markup(">")
			p.text(v.ExpiresAt)
			p.markup("</time>.</p>\n")
		}
		p.markup("  <form method=\"post\"")
		p.attr("action", v.AcceptURL)
		p.markup(">\n")
		if v.HasAccount {
			p.markup("    <p>You will join as <strong>")
			p.text(v.Username)
			p.markup("</strong>.</p>\n")
		} else {
			p.markup("    <p class=\"hint\" id=\"signup-hint\">There is no account for ")
			p.text(v.Email)
			p.markup(" yet. Accept now, then sign up with this email address: your enrollment becomes active when your account is created.</p>\n")
		}
		p.markup("    <button type=\"submit\" class=\"accept\" id=\"accept\">Accept</button>\n  </form>\n  <form method=\"post\"")
		p.attr("action", v.DeclineURL)
		p.markup(">\n    <button type=\"submit\" class=\"decline\" id=\"decline\">Decline</button>\n  </form>\n")
	case "accepted":
		p.markup("  <h1 id=\"result\">You're enrolled in ")
		p.text(v.CourseTitle)
		p.markup("</h1>\n  <p>Welcome")
		if v.Username != "" {
			p.markup(", <strong>")
			p.text(v.Username)
			p.markup("</strong>")
		}
		p.markup("! Your enrollment in course ")
		p.text(v.CourseID)
		p.markup(" is active.</p>\n")
	case "pending":
		p.markup("  <h1 id=\"result\">Invitation accepted</h1>\n  <p>You accepted the invitation to ")
		p.text(v.CourseTitle)
		p.markup(" (course ")
		p.text(v.CourseID)
		p.markup(").</p>\n  <p id=\"pending\">One step left: create your account with the email address <strong>")
		p.text(v.Email)
		p.markup("</strong>. Your enrollment becomes active as soon as the account exists.</p>\n")
		if v.SignupURL != "" {
			p.markup("  <p><a class=\"signup\" id=\"signup\"")
			p.attr("href", v.SignupURL)
			p.markup(">Sign up</a></p>\n")
		}
	case "declined":
		p.markup("  <h1 id=\"result\">Invitation declined</h1>\n  <p>You declined the invitation to ")
		p.text(v.CourseTitle)
		p.markup(". Nothing else will happen; you can close this page.</p>\n")
	default:
		p.markup("  <h1 id=\"result\">")
		p.text(v.Title)
		p.markup("</h1>\n  <p>")
		p.text(v.Message)
		p.markup("</p>\n")
	}
	p.markup("</div>\n</main>\n</body>\n</html>\n")
	return p.b.String()
}

const pageHead = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>`

const pageCSS = `  *, *::before, *::after { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #f4f5f7; }
  main { max-width: 32rem; margin: 0 auto; padding: 1.5rem 1rem; }
  .card { background: #fff; border-radius: 12px; padding: 1.5rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  h1 { font-size: 1.4rem; line-height: 1.3; margin: 0 0 1rem; overflow-wrap: anywhere; }
  p { margin: 0 0 1rem; overflow-wrap: anywhere; }
  .muted { color: #59636e; font-size: .95rem; }
  .hint { font-size: .9rem; color: #59636e; margin: .35rem 0 1rem; }
  .signup { display: block; text-align: center; font-weight: 600; padding: .8rem 1rem; border-radius: 8px; background: #1a7f37; color: #fff; text-decoration: none; }
  button { display: block; width: 100%; font-size: 1.05rem; font-weight: 600; padding: .8rem 1rem; border-radius: 8px; border: 1px solid transparent; cursor: pointer; }
  .accept { background: #1a7f37; color: #fff; margin-bottom: .75rem; }
  .decline { background: #fff; color: #1f2328; border-color: #c9ced6; }
  form { margin: 0; }
`
