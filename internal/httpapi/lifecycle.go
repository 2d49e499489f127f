package httpapi

import (
	"encoding/json"
	"net/http"

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
