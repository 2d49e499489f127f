package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// RetirementOps are the retirement operations of UserApiFunction, by template.yaml event name
// (docs/api.md#retirement).
func (a *API) RetirementOps(ret *rollcall.Retirements) map[string]http.HandlerFunc {
	h := &retirementAPI{API: a, ret: ret}
	return map[string]http.HandlerFunc{
		"DeactivateLogout":       a.authed(h.deactivateLogout),
		"RetirementQueue":        a.authed(h.queue),
		"RetirementStatus":       a.authed(h.status),
		"UpdateRetirementStatus": a.authed(h.update),
		"CancelRetirement":       a.authed(h.cancel),
		"RetirementUnenroll":     a.authed(h.unenroll),
		"RetireAccount":          a.authed(h.retire),
	}
}

type retirementAPI struct {
	*API
	ret *rollcall.Retirements
}

// retirementJSON is Open edX's UserRetirementStatusSerializer.
type retirementJSON struct {
	ID               int64     `json:"id"`
	User             userJSON  `json:"user"`
	OriginalUsername string    `json:"original_username"`
	OriginalEmail    string    `json:"original_email"`
	OriginalName     string    `json:"original_name"`
	RetiredUsername  string    `json:"retired_username"`
	RetiredEmail     string    `json:"retired_email"`
	CurrentState     stateJSON `json:"current_state"`
	LastState        stateJSON `json:"last_state"`
	Responses        string    `json:"responses"`
	Created          time.Time `json:"created"`
	Modified         time.Time `json:"modified"`
}

type userJSON struct {
	Username string `json:"username"`
	Email    string `json:"email"`
}

type stateJSON struct {
	ID                  int    `json:"id"`
	StateName           string `json:"state_name"`
	StateExecutionOrder int    `json:"state_execution_order"`
	IsDeadEndState      bool   `json:"is_dead_end_state"`
	Required            bool   `json:"required"`
}

func stateOf(s rollcall.RetirementState) stateJSON {
	return stateJSON{ID: s.Order() + 1, StateName: string(s), StateExecutionOrder: (s.Order() + 1) * 10, IsDeadEndState: s.DeadEnd()}
}

func toRetirementJSON(r *rollcall.Retirement) retirementJSON {
	cur := r.CurrentPerson()
	orig := userJSON{Username: r.OriginalUsername, Email: r.OriginalEmail}
	if r.Retired { // the request no longer holds the originals
		if orig.Username == "" {
			orig.Username = r.RetiredUsername
		}
		orig.Email = r.RetiredEmail
	}
	return retirementJSON{ID: r.ID, User: userJSON{Username: cur.Username, Email: cur.Email},
		OriginalUsername: orig.Username, OriginalEmail: orig.Email,
		RetiredUsername: r.RetiredUsername, RetiredEmail: r.RetiredEmail,
		CurrentState: stateOf(r.State), LastState: stateOf(r.LastState), Responses: r.Responses,
		Created: r.Created, Modified: r.Modified}
}

// stringField is a body field given once as a string (or number), "" when absent; a list or
// an object is a field error.
func stringField(f rollcall.Fields, name string) (string, error) {
	fd, ok := f[name]
	if !ok || !fd.Present {
		return "", nil
	}
	if fd.List || fd.Invalid || fd.Bool != nil || len(fd.Values) != 1 {
		return "", rollcall.FieldError(name, "Not a valid string.")
	}
	return fd.Values[0], nil
}

func (h *retirementAPI) body(w http.ResponseWriter, r *http.Request) (rollcall.Fields, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	f, err := DecodeFields(r)
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	return f, true
}

func (h *retirementAPI) deactivateLogout(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	f, ok := h.body(w, r)
	if !ok {
		return
	}
	username, err := stringField(f, "username")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := h.ret.DeactivateLogout(r.Context(), actor, username); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *retirementAPI) queue(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if err := requireRetirementService(actor); err != nil {
		writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	if len(q["cool_off_days"]) > 1 {
		writeError(w, r, rollcall.FieldError("cool_off_days", "Expected a single value."))
		return
	}
	days, err := strconv.Atoi(q.Get("cool_off_days"))
	if err != nil {
		writeError(w, r, rollcall.FieldError("cool_off_days", "A valid integer is required."))
		return
	}
	rs, err := h.ret.RetirementQueue(r.Context(), actor, days, q["states"])
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]retirementJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, toRetirementJSON(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func requireRetirementService(a rollcall.Actor) error {
	if !rollcall.IsRetirementService(a) {
		return rollcall.ErrForbidden
	}
	return nil
}

func (h *retirementAPI) status(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	x, err := h.ret.RetirementStatus(r.Context(), actor, r.PathValue("username"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRetirementJSON(x))
}

func (h *retirementAPI) update(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if err := requireRetirementService(actor); err != nil {
		writeError(w, r, err)
		return
	}
	f, ok := h.body(w, r)
	if !ok {
		return
	}
	var vals [3]string
	for i, name := range []string{"username", "new_state", "response"} {
		v, err := stringField(f, name)
		if err != nil {
			writeError(w, r, err)
			return
		}
		vals[i] = v
	}
	if err := h.ret.UpdateRetirementStatus(r.Context(), actor, vals[0], vals[1], vals[2]); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *retirementAPI) cancel(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if err := actor.RequireStaff(); err != nil {
		writeError(w, r, err)
		return
	}
	f, ok := h.body(w, r)
	if !ok {
		return
	}
	v, err := stringField(f, "retirement_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if v == "" {
		writeError(w, r, rollcall.FieldError("retirement_id", "This field is required."))
		return
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		writeError(w, r, rollcall.FieldError("retirement_id", "A valid integer is required."))
		return
	}
	if err := h.ret.CancelRetirement(r.Context(), actor, id); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *retirementAPI) username(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) (string, bool) {
	if err := requireRetirementService(actor); err != nil {
		writeError(w, r, err)
		return "", false
	}
	f, ok := h.body(w, r)
	if !ok {
		return "", false
	}
	u, err := stringField(f, "username")
	if err != nil {
		writeError(w, r, err)
		return "", false
	}
	return u, true
}

func (h *retirementAPI) unenroll(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	username, ok := h.username(w, r, actor)
	if !ok {
		return
	}
	courses, err := h.ret.Unenroll(r.Context(), actor, username)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(courses) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, courses)
}

func (h *retirementAPI) retire(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	username, ok := h.username(w, r, actor)
	if !ok {
		return
	}
	if err := h.ret.Retire(r.Context(), actor, username); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
