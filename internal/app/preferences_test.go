package app_test

// The preferences API (Open edX's user_api preferences) through the real handlers, against
// DynamoDB Local.

import (
	"net/http"
	"strings"
	"testing"
)

func TestPreferences(t *testing.T) {
	e := newRetirementEnv(t)
	mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": "Pia", "email": "pia@example.com"}, ""), http.StatusCreated)
	pia := token(t, "pia", false)
	const base = "/api/user/v1/preferences/Pia"
	const merge = "application/merge-patch+json"

	r := e.do("GET", base, pia, nil, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, `{}`)
	mustStatus(t, e.do("PATCH", base, pia, `{"pref-lang": "es", "time_zone": "Europe/Madrid", "foo": "bar"}`, merge), http.StatusNoContent)
	mustStatus(t, e.do("PATCH", base+"/", pia, `{"foo": null, "dark_mode": "on"}`, "application/json"), http.StatusNoContent)
	r = e.do("GET", base+"/", pia, nil, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, `{"pref-lang": "es", "time_zone": "Europe/Madrid", "dark_mode": "on"}`)

	// Validation: Open edX's shape, nothing written when any key is bad.
	r = e.do("PATCH", base, pia, `{"time_zone": "Mars/Olympus", "pref-lang": "fr"}`, merge)
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"field_errors": {"time_zone": {"developer_message": "Value 'Mars/Olympus' not valid for preference 'time_zone': Not in timezone set.", "user_message": "Value 'Mars/Olympus' is not a valid time zone selection."}}}`)
	r = e.do("PATCH", base, pia, `{"n": 5, "bad key!": "x", "empty": ""}`, merge)
	mustStatus(t, r, http.StatusBadRequest)
	fe := r.json(t).(map[string]any)["field_errors"].(map[string]any)
	for _, k := range []string{"n", "bad key!", "empty"} {
		if m, ok := fe[k].(map[string]any); !ok || m["developer_message"] == "" || m["user_message"] == "" {
			t.Errorf("field_errors[%q] = %v", k, fe[k])
		}
	}
	r = e.do("PATCH", base, pia, `{"long": "`+strings.Repeat("x", 4001)+`"}`, merge)
	mustStatus(t, r, http.StatusBadRequest)
	mustStatus(t, e.do("PATCH", base, pia, `{}`, merge), http.StatusBadRequest)
	mustStatus(t, e.do("PATCH", base, pia, `["x"]`, merge), http.StatusBadRequest)
	mustStatus(t, e.do("PATCH", base, pia, `{"x":`, merge), http.StatusBadRequest)
	mustStatus(t, e.do("PATCH", base, pia, `pref-lang=es`, "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType)
	r = e.do("GET", base+"/pref-lang", pia, nil, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, `"es"`)

	// One key: PUT creates (201) then updates (204); DELETE, then 404.
	mustStatus(t, e.do("PUT", base+"/newkey", pia, `"v1"`, "application/json"), http.StatusCreated)
	mustStatus(t, e.do("PUT", base+"/newkey", pia, `"v2"`, "application/json"), http.StatusNoContent)
	r = e.do("GET", base+"/newkey", pia, nil, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, `"v2"`)
	mustStatus(t, e.do("PUT", base+"/newkey", pia, `42`, "application/json"), http.StatusBadRequest)
	mustStatus(t, e.do("PUT", base+"/time_zone", pia, `"Nowhere/Land"`, "application/json"), http.StatusBadRequest)
	mustStatus(t, e.do("DELETE", base+"/newkey", pia, nil, ""), http.StatusNoContent)
	mustStatus(t, e.do("DELETE", base+"/newkey", pia, nil, ""), http.StatusNotFound)
	mustStatus(t, e.do("GET", base+"/newkey", pia, nil, ""), http.StatusNotFound)

	// Self or staff only; an unknown user is a 404 for staff.
	carl := token(t, "carl", false)
	mustStatus(t, e.do("GET", base, carl, nil, ""), http.StatusForbidden)
	mustStatus(t, e.do("PATCH", base, carl, `{"pref-lang": "fr"}`, merge), http.StatusForbidden)
	mustStatus(t, e.do("PUT", base+"/pref-lang", carl, `"fr"`, "application/json"), http.StatusForbidden)
	mustStatus(t, e.do("DELETE", base+"/pref-lang", carl, nil, ""), http.StatusForbidden)
	mustStatus(t, e.do("GET", base, "", nil, ""), http.StatusUnauthorized)
	mustStatus(t, e.do("GET", base, e.staff, nil, ""), http.StatusOK)
	mustStatus(t, e.do("PATCH", base, e.staff, `{"pref-lang": "pt-br"}`, merge), http.StatusNoContent)
	mustStatus(t, e.do("GET", "/api/user/v1/preferences/nobody", e.staff, nil, ""), http.StatusNotFound)
}

func TestTimeZones(t *testing.T) {
	e := newRetirementEnv(t)
	mustStatus(t, e.do("GET", "/api/user/v1/preferences/time_zones/", "", nil, ""), http.StatusUnauthorized)
	learner := token(t, "someone", false)
	r := e.do("GET", "/api/user/v1/preferences/time_zones/?country_code=fr", learner, nil, "")
	mustStatus(t, r, http.StatusOK)
	// The test clock is in November: Paris keeps winter time.
	jsonEqual(t, r.Body, `[{"time_zone": "Europe/Paris", "description": "Europe/Paris (CET, UTC+0100)"}]`)
	r = e.do("GET", "/api/user/v1/preferences/time_zones/?country_code=BR", e.staff, nil, "")
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"America/Sao_Paulo"`) || strings.Contains(string(r.Body), "Europe/") {
		t.Fatalf("BR: %s", r.Body)
	}
	for _, q := range []string{"", "?country_code=", "?country_code=ZZ"} {
		r = e.do("GET", "/api/user/v1/preferences/time_zones"+q, learner, nil, "")
		mustStatus(t, r, http.StatusOK)
		if all := r.json(t).([]any); len(all) < 300 || !strings.Contains(string(r.Body), `"UTC"`) {
			t.Fatalf("all zones%s: %d", q, len(all))
		}
	}
}
