package httpapi

import (
	"net/http"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// BulkOps are the operations of BulkEnrollFunction, by template.yaml event name.
func (a *API) BulkOps() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"BulkEnroll":              a.authed(a.idempotent(a.bulkEnroll)),
		"AppsemblerBulkEnroll":    a.authed(a.idempotent(a.bulkEnroll)),
		"CreateCourseEnrollment":  a.authed(a.idempotent(a.createEnrollment)),
		"DeleteEnrollment":        a.authed(a.deleteEnrollment),
		"PatchEnrollment":         a.authed(a.idempotent(a.patchEnrollment)),
		"ResendInvitation":        a.authed(a.idempotent(a.resendInvitation)),
		"ResendCourseInvitations": a.authed(a.idempotent(a.resendCourseInvitations)),
	}
}

// bulkEnroll is POST /api/bulk_enroll/v1/bulk_enroll/ and POST /appsembler/bulk_enroll/.
func (a *API) bulkEnroll(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	limitBody(w, r)
	fields, err := DecodeFields(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.Svc.BulkEnroll(r.Context(), actor, fields)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
