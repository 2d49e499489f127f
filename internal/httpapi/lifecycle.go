package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// patchEnrollment is PATCH /api/enrollments/{id}: role, mode, cohort, end_at; 200 the resource.
func (a *API) patchEnrollment(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	limitBody(w, r)
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := rollcall.ParseEnrollmentPatch(raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	e, err := a.Svc.PatchEnrollment(r.Context(), actor, r.PathValue("id"), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.Resource(r, e, a.Svc.Clock()))
}

// HistoryItem is one entry of GET /api/enrollments/{id}/history.
type HistoryItem struct {
	At     string  `json:"at"`
	Actor  string  `json:"actor"`
	Reason *string `json:"reason"`
	From   string  `json:"from"`
	To     string  `json:"to"`
	Source string  `json:"source"`
}

// enrollmentHistory is GET /api/enrollments/{id}/history: oldest first, paginated.
func (a *API) enrollmentHistory(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q, qerr := parseQuery(r, "page_size", "cursor")
	if qerr != nil {
		writeError(w, r, qerr)
		return
	}
	res, err := a.Svc.History(r.Context(), actor, r.PathValue("id"), listParam(q, "page_size"), listParam(q, "cursor"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	items := make([]HistoryItem, len(res.Items))
	for i, h := range res.Items {
		items[i] = HistoryItem{At: rfc3339(h.At), Actor: h.Actor, Reason: optional(h.Reason),
			From: h.From, To: h.To, Source: h.Source}
	}
	a.writeList(w, r, res.Next, items)
}

// resendInvitation is POST /api/enrollments/{id}/resend with an optional {"rotate", "extend"}.
func (a *API) resendInvitation(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	limitBody(w, r)
	var in struct {
		Rotate *bool `json:"rotate"`
		Extend *bool `json:"extend"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &in); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, r, err)
			return
		}
	}
	o := rollcall.ResendOptions{Rotate: in.Rotate != nil && *in.Rotate, Extend: in.Extend != nil && *in.Extend}
	e, err := a.Svc.ResendInvitation(r.Context(), actor, r.PathValue("id"), o)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// The resend answer alone adds last_sent_at and send_count (the other answers keep the
	// resource's keys as they were).
	res := a.Resource(r, e, a.Svc.Clock())
	if !e.LastSentAt.IsZero() {
		x := rfc3339(e.LastSentAt)
		res.LastSentAt, res.SendCount = &x, e.SendCount
	}
	writeJSON(w, http.StatusOK, res)
}

// resendCourseInvitations is POST /api/courses/{course_id}/invitations/resend with
// {"not_sent_since_hours": N} (default 24): 202 {"queued": N}.
func (a *API) resendCourseInvitations(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	limitBody(w, r)
	var in struct {
		Hours *int `json:"not_sent_since_hours"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &in); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, r, err)
			return
		}
	}
	hours := 24
	if in.Hours != nil {
		hours = *in.Hours
	}
	if hours < 0 || hours > rollcall.MaxResendHours {
		writeError(w, r, rollcall.FieldError("not_sent_since_hours", fmt.Sprintf("Ensure this value is between 0 and %d.", rollcall.MaxResendHours)))
		return
	}
	n, err := a.Svc.ResendCourseInvitations(r.Context(), actor, r.PathValue("course_id"), time.Duration(hours)*time.Hour)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
}
