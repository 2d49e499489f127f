package httpapi

import (
	"net/http"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// createEnrollment is POST /api/courses/{course_id}/enrollments with {"enrollment": {"email"}}:
// one invitation, 201, and the only response that carries invitation_url.
func (a *API) createEnrollment(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	limitBody(w, r)
	var in struct {
		Enrollment *struct {
			Email *string `json:"email"`
		} `json:"enrollment"`
	}
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	if in.Enrollment == nil {
		writeError(w, r, rollcall.FieldError("enrollment", "This field is required."))
		return
	}
	email := ""
	if in.Enrollment.Email != nil {
		email = *in.Enrollment.Email
	}
	e, token, err := a.Svc.CreateInvitation(r.Context(), actor, r.PathValue("course_id"), email)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res := a.Resource(r, e, a.Svc.Clock())
	res.InvitationURL = a.InvitationURL(r, token)
	// The body carries the invitation's token: no cache may keep it.
	tokenHeaders(w)
	w.Header().Set("Location", *res.Links[0].Href)
	writeJSON(w, http.StatusCreated, res)
}

// deleteEnrollment is DELETE /api/enrollments/{id}: unenroll or revoke; 204.
func (a *API) deleteEnrollment(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if _, err := a.Svc.DeleteEnrollment(r.Context(), actor, r.PathValue("id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
