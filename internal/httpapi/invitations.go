package httpapi

import (
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// InvitationOps are the operations of InvitationsFunction, by template.yaml event name. None
// needs a JWT: the token in the path is the credential (docs/api.md#invitations).
func (a *API) InvitationOps() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"InvitationPage":        a.invitationPage,
		"InvitationFormAccept":  a.invitationFormAccept,
		"InvitationFormDecline": a.invitationFormDecline,
		"AcceptInvitation":      a.acceptInvitation,
		"DeclineInvitation":     a.declineInvitation,
	}
}

// maxInvitationBody bounds accept/decline bodies (they carry nothing the answer needs).
const maxInvitationBody = 16 << 10

// tokenHeaders keep the token (it is in the URL) out of caches and Referer headers.
func tokenHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// pendingResource is the answer to an accept pending sign-up: the enrollment and where to
// sign up (null if not configured).
type pendingResource struct {
	EnrollmentResource
	SignupURL *string `json:"signup_url"`
}

// acceptInvitation is POST /api/invitations/{token}/accept: 200 and the enrollment. With a
// bearer token it is accepted for that signed-in user (whose email must be the invitation's);
// without one, for the account of the invitation's email, or pending its sign-up.
func (a *API) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	tokenHeaders(w)
	var actor *rollcall.Actor
	if r.Header.Get("Authorization") != "" {
		act, err := a.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		actor = &act
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxInvitationBody)
	var in struct{}
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.Svc.AcceptInvitation(r.Context(), r.PathValue("token"), actor)
	if err != nil {
		writeError(w, r, err)
		return
	}
	body := a.Resource(r, res.Enrollment, a.Svc.Clock())
	if res.Pending {
		writeJSON(w, http.StatusOK, pendingResource{EnrollmentResource: body, SignupURL: optional(a.SignupURL)})
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// declineInvitation is POST /api/invitations/{token}/decline: 200 and the enrollment, declined.
func (a *API) declineInvitation(w http.ResponseWriter, r *http.Request) {
	tokenHeaders(w)
	res, err := a.Svc.DeclineInvitation(r.Context(), r.PathValue("token"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.Resource(r, res.Enrollment, a.Svc.Clock()))
}

// invitationPage is GET /invitations/{token}: the page with Accept and Decline.
func (a *API) invitationPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	inv, err := a.Svc.Invitation(r.Context(), token)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	// The page is /invitations/<token>; relative actions keep working under any base path.
	writePage(w, http.StatusOK, invitationView(inv, token+"/accept", token+"/decline", a.SignupURL))
}

// invitationFormAccept is POST /invitations/{token}/accept from the page's form (no login:
// the account of the invitation's email, or pending its sign-up).
func (a *API) invitationFormAccept(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, err := formValue(w, r, ""); err != nil {
		a.pageError(w, r, err)
		return
	}
	res, err := a.Svc.AcceptInvitation(r.Context(), token, nil)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	view := pageView{Title: "You're enrolled", Kind: "accepted", CourseTitle: res.Course.Title, CourseID: res.Course.ID}
	if res.User != nil {
		view.Username = res.User.Username
	}
	if res.Pending {
		view.Title, view.Kind = "Invitation accepted", "pending"
		view.Email, view.SignupURL = res.Enrollment.Email, a.SignupURL
	}
	writePage(w, http.StatusOK, view)
}

// invitationFormDecline is POST /invitations/{token}/decline from the page's form.
func (a *API) invitationFormDecline(w http.ResponseWriter, r *http.Request) {
	if _, err := formValue(w, r, ""); err != nil {
		a.pageError(w, r, err)
		return
	}
	res, err := a.Svc.DeclineInvitation(r.Context(), r.PathValue("token"))
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	writePage(w, http.StatusOK, pageView{Title: "Invitation declined", Kind: "declined",
		CourseTitle: res.Course.Title, CourseID: res.Course.ID})
}

// formValue reads an urlencoded (or multipart) form body and returns one field.
func formValue(w http.ResponseWriter, r *http.Request, name string) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxInvitationBody)
	if err := r.ParseForm(); err != nil {
		return "", bodyError(err)
	}
	if name == "" {
		return "", nil
	}
	return r.PostFormValue(name), nil
}

// pageError renders an error as a page with the status the JSON API would answer.
func (a *API) pageError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	if status >= 500 {
		logger(r.Context()).ErrorContext(r.Context(), "request failed", "status", status, "error", err.Error())
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	msg := "Something went wrong. Please try again later."
	switch b := body.(type) {
	case detail:
		msg = b.Detail
	case map[string][]string:
		for _, msgs := range b {
			msg = strings.Join(msgs, " ")
			break
		}
	}
	view := pageView{Title: "Invitation", Kind: "error", Message: msg}
	switch status {
	case http.StatusNotFound:
		view.Title = "Invitation not found"
		view.Message = "This invitation link is not valid. Check that you opened the whole link from your email."
	case http.StatusGone:
		view.Title = "Invitation no longer available"
	case http.StatusServiceUnavailable:
		view.Title = "Please try again"
	}
	writePage(w, status, view)
}
