package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

// A job takes bulk enroll's lifecycle options (role, mode, duration_days, invite_registered)
// and its rows get exactly what bulk enroll gives them: the roles in the results, the mode,
// role and end date on the enrollments, a registered user invited instead of enrolled. Bad
// options are refused when the job is made, as bulk enroll refuses them.
func TestJobLifecycleOptions(t *testing.T) {
	h := newHarness(t, options{jobs: true, noStreams: true})
	course := "course-v1:JobOrg+Life+2026"
	staff := bearer(t, "staff", true)
	r := h.do(http.MethodPut, "/api/courses/"+url.PathEscape(course), staff,
		map[string]any{"title": "Life", "modes": []string{"audit", "verified"}})
	mustStatus(t, r, http.StatusCreated)
	registered := testenv.Address("life-registered")
	h.createUser("liferegistered", registered)
	invitee := testenv.Address("life-invitee")
	idents := []string{"liferegistered", invitee}
	fields := map[string]any{"identifiers": idents, "courses": course, "action": "enroll",
		"role": "ta", "mode": "verified", "duration_days": 30, "invite_registered": true}

	// Refused when the job is made: a mode the course does not offer, an admin role from a
	// course admin who is not staff, a role with unenroll (as bulk enroll refuses them).
	bad := map[string]any{"identifiers": idents, "courses": course, "action": "enroll", "mode": "professional"}
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", staff, bad)
	mustStatus(t, r, http.StatusBadRequest)
	if want := `{"non_field_errors":["Mode professional is not offered in course ` + course + `."]}`; string(r.Body) != want {
		t.Errorf("mode not offered: %s, want %s", r.Body, want)
	}
	r = h.postCSV(staff, "format=identifiers&action=unenroll&role=ta&courses="+url.QueryEscape(course), "identifier\n"+invitee+"\n")
	mustStatus(t, r, http.StatusBadRequest)
	if want := `{"non_field_errors":["Roles and modes can only be used for enrollments."]}`; string(r.Body) != want {
		t.Errorf("role with unenroll: %s, want %s", r.Body, want)
	}

	// A job given as fields is validated exactly as bulk enroll: every field's error at once.
	both := map[string]any{"courses": course, "action": "enroll", "role": "boss"}
	jr := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", staff, both)
	br := h.do(http.MethodPost, "/api/bulk_enroll/v1/bulk_enroll/", staff, both)
	mustStatus(t, jr, http.StatusBadRequest)
	if string(jr.Body) != string(br.Body) {
		t.Errorf("job 400 %s, bulk enroll 400 %s", jr.Body, br.Body)
	}

	made := h.clock()
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", staff, fields)
	mustStatus(t, r, http.StatusAccepted)
	id := r.json(t)["id"].(string)
	job := h.waitJob(staff, id, 30*time.Second)
	if c := counts(job); job["state"] != "succeeded" || c["changed"] != 2 {
		t.Fatalf("job = %v", job)
	}
	res := h.results(staff, id)
	for i, row := range res {
		after := row["after"].(map[string]any)
		if after["role"] != "ta" || after["allowed"] != true || after["enrollment"] != false {
			t.Errorf("row %d after = %v, want an invitation as ta", i+1, after)
		}
		if before := row["before"].(map[string]any); before["role"] != nil || !hasKey(before, "role") {
			t.Errorf("row %d before = %v, want role null", i+1, before)
		}
	}
	if res[0]["after"].(map[string]any)["user"] != true {
		t.Errorf("registered row = %v, want user true (invited instead of enrolled)", res[0])
	}
	for _, email := range []string{registered, invitee} {
		e := h.enrollment(course, email)
		wantEnd := made.AddDate(0, 0, 30)
		if e.Role != "ta" || e.Mode != "verified" || e.EndAt.Before(wantEnd.Add(-time.Minute)) || e.EndAt.After(wantEnd.Add(time.Minute)) {
			t.Errorf("%s: role %q mode %q end %v, want ta, verified, about %v", email, e.Role, e.Mode, e.EndAt, wantEnd)
		}
		// The history of what a job changed says "job" (the audit function reads it from here).
		if e.LastChange == nil || rollcall.HistorySource(e.LastChange.Source) != rollcall.HistoryJob {
			t.Errorf("%s: last change %+v, want source job", email, e.LastChange)
		}
	}
	csv := h.resultsCSV(staff, id)
	head := strings.Join(csv[0], ",")
	if !strings.HasSuffix(head, ",error,before_role,after_role") || csv[1][16] != "ta" || csv[1][15] != "" {
		t.Errorf("results CSV: %q / %q", head, csv[1])
	}

	// Bulk enroll with the same fields now: every row before = after; the job's repeat gives
	// exactly those results.
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/bulk_enroll/", staff, fields)
	mustStatus(t, r, http.StatusOK)
	want := r.json(t)["courses"].(map[string]any)[course].(map[string]any)["results"].([]any)
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", staff, fields)
	mustStatus(t, r, http.StatusAccepted)
	id = r.json(t)["id"].(string)
	if job = h.waitJob(staff, id, 30*time.Second); counts(job)["unchanged"] != 2 {
		t.Fatalf("repeat = %v", job)
	}
	for i, row := range h.results(staff, id) {
		delete(row, "row")
		delete(row, "course_id")
		if fmt.Sprint(row) != fmt.Sprint(want[i]) {
			t.Errorf("repeat row %d = %v, bulk enroll gave %v", i+1, row, want[i])
		}
	}

	// A job that changes only the mode changes both enrollments, though their states (which
	// do not show the mode) stay the same.
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", staff, map[string]any{
		"identifiers": idents, "courses": course, "action": "enroll", "mode": "audit", "invite_registered": true})
	mustStatus(t, r, http.StatusAccepted)
	id = r.json(t)["id"].(string)
	if job = h.waitJob(staff, id, 30*time.Second); counts(job)["changed"] != 2 {
		t.Errorf("mode-only job = %v, want 2 changed", job)
	}
	if csv := h.resultsCSV(staff, id); csv[1][3] != "changed" || csv[2][3] != "changed" {
		t.Errorf("mode-only results CSV = %q", csv)
	}
	if e := h.enrollment(course, invitee); e.Mode != "audit" || e.Role != "ta" {
		t.Errorf("after the mode-only job: role %q mode %q, want ta audit", e.Role, e.Mode)
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }
