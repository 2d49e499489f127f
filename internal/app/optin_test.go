package app_test

// Email opt-in per organization and the staff CSV report, against DynamoDB Local.

import (
	"encoding/csv"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func TestEmailOptIn(t *testing.T) {
	e := newRetirementEnv(t)
	c1, c2, other := "course-v1:OrgA+C1+2026", "OrgA/C2/2026", "course-v1:OrgB+X+2026"
	for _, c := range []string{c1, c2, other} {
		mustStatus(t, e.do("PUT", "/api/courses/"+strings.ReplaceAll(c, "/", "%2F"), e.staff, map[string]any{"title": c}, ""), http.StatusCreated)
	}
	for _, u := range []string{"opt1", "opt2", "opt3"} {
		mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": u, "email": u + "@example.com"}, ""), http.StatusCreated)
	}
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{
		"identifiers": "opt1,opt2,nobody@example.com", "action": "enroll", "courses": c1 + "," + c2}, ""), http.StatusOK)
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{
		"identifiers": "opt3", "action": "enroll", "courses": other}, ""), http.StatusOK)

	const path = "/api/user/v1/preferences/email_opt_in/"
	mustStatus(t, e.do("POST", path, token(t, "opt1", false), map[string]any{"course_id": c1, "email_opt_in": "TRUE"}, ""), http.StatusOK)
	mustStatus(t, e.do("POST", path, token(t, "opt2", false), "course_id=OrgA%2FC2%2F2026&email_opt_in=yes", "application/x-www-form-urlencoded"), http.StatusOK)
	mustStatus(t, e.do("POST", path, token(t, "opt3", false), map[string]any{"course_id": other, "email_opt_in": true}, ""), http.StatusOK)
	r := e.do("POST", path, token(t, "opt1", false), map[string]any{}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"course_id": ["This field is required."], "email_opt_in": ["This field is required."]}`)
	mustStatus(t, e.do("POST", path, token(t, "opt1", false), map[string]any{"course_id": "nope", "email_opt_in": "True"}, ""), http.StatusBadRequest)
	mustStatus(t, e.do("POST", path, "", map[string]any{"course_id": c1, "email_opt_in": "True"}, ""), http.StatusUnauthorized)

	mustStatus(t, e.do("GET", "/api/user/v1/email_opt_in/?org=OrgA", token(t, "opt1", false), nil, ""), http.StatusForbidden)
	mustStatus(t, e.do("GET", "/api/user/v1/email_opt_in/", e.staff, nil, ""), http.StatusBadRequest)
	for _, org := range []string{"OrgA", "orga"} {
		r = e.do("GET", "/api/user/v1/email_opt_in/?org="+org, e.staff, nil, "")
		mustStatus(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("content type %q", ct)
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != "user_id,username,email,full_name,course_id,is_opted_in_for_email,preference_set_datetime" {
			t.Fatalf("header %v", rows[0])
		}
		var got []string
		for _, row := range rows[1:] {
			got = append(got, strings.Join(row[1:], ","))
		}
		sort.Strings(got)
		want := []string{
			"opt1,opt1@example.com,," + c2 + ",True,2026-11-23 09:00:00",
			"opt1,opt1@example.com,," + c1 + ",True,2026-11-23 09:00:00",
			"opt2,opt2@example.com,," + c2 + ",False,2026-11-23 09:00:00",
			"opt2,opt2@example.com,," + c1 + ",False,2026-11-23 09:00:00",
		}
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("org=%s report:\n%s\nwant\n%s", org, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	r = e.do("GET", "/api/user/v1/email_opt_in/?org=Nobody", e.staff, nil, "")
	mustStatus(t, r, http.StatusOK)
	if strings.Count(string(r.Body), "\n") != 1 {
		t.Fatalf("empty report %q", r.Body)
	}
}
