package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// PreferenceOps are the preference operations of UserApiFunction, by template.yaml event name
// (docs/api.md#preferences).
func (a *API) PreferenceOps(p *rollcall.Preferences) map[string]http.HandlerFunc {
	h := &prefsAPI{API: a, p: p}
	return map[string]http.HandlerFunc{
		"GetPreferences":   a.authed(h.get),
		"PatchPreferences": a.authed(h.patch),
		"GetPreference":    a.authed(h.getOne),
		"PutPreference":    a.authed(h.put),
		"DeletePreference": a.authed(h.delete),
		"TimeZones":        a.authed(h.timeZones),
	}
}

type prefsAPI struct {
	*API
	p *rollcall.Preferences
}

// writePrefError writes Open edX's preference errors ({"field_errors": ...}, or
// {"developer_message", "user_message"}) and everything else as usual.
func writePrefError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *rollcall.PreferenceFieldError
	if errors.As(err, &fe) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"field_errors": fe.Fields})
		return
	}
	var me *prefMessageError
	if errors.As(err, &me) {
		writeJSON(w, http.StatusBadRequest, rollcall.PreferenceMessage{DeveloperMessage: me.msg, UserMessage: me.msg})
		return
	}
	writeError(w, r, err)
}

type prefMessageError struct{ msg string }

func (e *prefMessageError) Error() string { return e.msg }

// readPrefBody reads a JSON body (application/json, application/merge-patch+json or any
// +json; no content type is taken as JSON) of at most 1 MiB.
func readPrefBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return nil, &mediaError{mediaType: mt}
		}
	}
	limitBody(w, r)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

func prefValue(raw json.RawMessage) rollcall.PreferenceValue {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return rollcall.PreferenceValue{Null: true}
	}
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return rollcall.PreferenceValue{Value: s}
	}
	return rollcall.PreferenceValue{Invalid: true}
}

func (h *prefsAPI) get(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	prefs, err := h.p.Get(r.Context(), actor, r.PathValue("username"))
	if err != nil {
		writePrefError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, prefs)
}

func (h *prefsAPI) patch(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	b, err := readPrefBody(w, r)
	if err != nil {
		writePrefError(w, r, err)
		return
	}
	var obj map[string]json.RawMessage
	if len(bytes.TrimSpace(b)) == 0 {
		obj = map[string]json.RawMessage{}
	} else if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			writePrefError(w, r, &parseError{msg: "JSON parse error - " + err.Error()})
			return
		}
		writePrefError(w, r, rollcall.NonFieldError("Invalid data. Expected a dictionary."))
		return
	}
	if len(obj) == 0 {
		writePrefError(w, r, &prefMessageError{msg: "No data provided for user preference update"})
		return
	}
	patch := make(map[string]rollcall.PreferenceValue, len(obj))
	for k, v := range obj {
		patch[k] = prefValue(v)
	}
	if err := h.p.Update(r.Context(), actor, r.PathValue("username"), patch); err != nil {
		writePrefError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *prefsAPI) key(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.PathValue("preference_key")
	if !rollcall.ValidPreferenceKey(k) {
		writePrefError(w, r, rollcall.ErrNotFound)
		return "", false
	}
	return k, true
}

func (h *prefsAPI) getOne(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	k, ok := h.key(w, r)
	if !ok {
		return
	}
	v, err := h.p.GetOne(r.Context(), actor, r.PathValue("username"), k)
	if err != nil {
		writePrefError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *prefsAPI) put(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	k, ok := h.key(w, r)
	if !ok {
		return
	}
	b, err := readPrefBody(w, r)
	if err != nil {
		writePrefError(w, r, err)
		return
	}
	if !json.Valid(b) {
		writePrefError(w, r, &parseError{msg: "JSON parse error - the body is not a JSON value"})
		return
	}
	created, err := h.p.Set(r.Context(), actor, r.PathValue("username"), k, prefValue(b))
	if err != nil {
		writePrefError(w, r, err)
		return
	}
	if created {
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *prefsAPI) delete(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	k, ok := h.key(w, r)
	if !ok {
		return
	}
	if err := h.p.Delete(r.Context(), actor, r.PathValue("username"), k); err != nil {
		writePrefError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// timeZones is GET preferences/time_zones/[?country_code=FR] (any signed-in user).
func (h *prefsAPI) timeZones(w http.ResponseWriter, r *http.Request, _ rollcall.Actor) {
	q := r.URL.Query()
	if len(q["country_code"]) > 1 {
		writeError(w, r, rollcall.FieldError("country_code", "Expected a single value."))
		return
	}
	writeJSON(w, http.StatusOK, rollcall.TimeZones(q.Get("country_code"), h.Svc.Clock()))
}
