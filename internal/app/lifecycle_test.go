package app_test

// Integration tests of the enrollment lifecycle (roles, modes, PATCH, history) through the real
// handlers, against DynamoDB Local with the table's stream feeding the real audit function.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

const lifeCourse = "course-v1:Org+Life+2026"

type lifeFixture struct {
	*env
	staff string
}

// newLifeFixture serves the bulk, admin and listing functions over a table whose stream runs
// the audit function (which keeps the history and the role admins).
func newLifeFixture(t *testing.T) *lifeFixture {
	t.Helper()
	services := testenv.Start(t)
	_, table := testenv.NewTable(t) // with its stream
	e := newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, "BulkEnrollFunction", "AdminFunction", "ListEnrollmentsFunction")
	auditor := e.deps.Auditor()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	auditor.Log = quiet
	lookup := func(_ context.Context, id string) (any, error) {
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return auditor.Handle(ctx, ev)
		}, nil
	}
	runner, err := localstack.NewStreamRunner(localstack.StreamRunnerOptions{
		Template: services.Template, Invoker: localstack.NewInvoker(services.Template, lookup, quiet),
		DynamoDB: localstack.NewDynamoDBClient(services.DynamoDBEndpoint), Streams: localstack.NewStreamsClient(services.DynamoDBEndpoint),
		TableName: table, PollInterval: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Functions: []string{"AuditFunction"}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	f := &lifeFixture{env: e, staff: token(t, "Bob", true)}
	mustStatus(t, e.do("PUT", "/api/courses/"+lifeCourse, f.staff, map[string]any{"title": "Life",
		"cohorts": []string{"A", "B"}, "admins": []string{"carol"}, "modes": []string{"audit", "verified"}}, ""), http.StatusCreated)
	for _, u := range []string{"dave", "erin"} {
		mustStatus(t, e.do("POST", "/api/users", f.staff, map[string]any{"username": u, "email": u + "@example.com"}, ""), http.StatusCreated)
	}
	return f
}

func (f *lifeFixture) pub(email string) string {
	return f.deps.Service.PublicID(&rollcall.Enrollment{ID: rollcall.EnrollmentID(lifeCourse, email)})
}

// eventually polls until check passes or 20 seconds have gone (the stream's lag).
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCourseModesValidation(t *testing.T) {
	e := newEnv(t, "AdminFunction")
	staff := token(t, "Bob", true)
	r := e.do("PUT", "/api/courses/"+lifeCourse, staff, map[string]any{"title": "x", "modes": []string{"gold"}}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"modes":["\"gold\" is not a valid choice."]}`)
	r = e.do("PUT", "/api/courses/"+lifeCourse, staff, map[string]any{"title": "x", "modes": []string{"audit"}, "default_mode": "verified"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	r = e.do("PUT", "/api/courses/"+lifeCourse, staff, map[string]any{"title": "x", "modes": []string{"verified", "audit"}}, "")
	mustStatus(t, r, http.StatusCreated)
	var c map[string]any
	json.Unmarshal(r.Body, &c)
	if c["default_mode"] != "verified" || len(c["modes"].([]any)) != 2 {
		t.Fatalf("course %s", r.Body)
	}
	if _, ok := c["role_admins"]; ok {
		t.Fatalf("course shows role_admins: %s", r.Body)
	}
	// A course without modes offers audit.
	r = e.do("PUT", "/api/courses/"+lifeCourse, staff, map[string]any{"title": "x"}, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, []byte(`{"m":`+mustField(t, r.Body, "modes")+`}`), `{"m":["audit"]}`)
}

func mustField(t *testing.T, body []byte, k string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return string(m[k])
}

func TestBulkRolesAndModes(t *testing.T) {
	f := newLifeFixture(t)
	bulk := "/api/bulk_enroll/v1/bulk_enroll/"
	body := func(extra map[string]any) map[string]any {
		m := map[string]any{"identifiers": "dave", "action": "enroll", "courses": lifeCourse}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// The two 400 shapes of modes, and an unknown role.
	r := f.do("POST", bulk, f.staff, body(map[string]any{"mode": "gold"}), "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"mode":["\"gold\" is not a valid choice."]}`)
	mustStatus(t, f.do("PUT", "/api/courses/course-v1:Org+Other+2026", f.staff, map[string]any{"title": "Other"}, ""), http.StatusCreated)
	r = f.do("POST", bulk, f.staff, map[string]any{"identifiers": "dave", "action": "enroll", "courses": "course-v1:Org+Other+2026", "mode": "verified"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"non_field_errors":["Mode verified is not offered in course course-v1:Org+Other+2026."]}`)
	r = f.do("POST", bulk, f.staff, body(map[string]any{"role": "dean"}), "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"role":["\"dean\" is not a valid choice."]}`)

	// Only staff grant ta or instructor; a course admin may enroll observers.
	carol := token(t, "carol", false)
	mustStatus(t, f.do("POST", bulk, carol, body(map[string]any{"role": "ta"}), ""), http.StatusForbidden)
	mustStatus(t, f.do("POST", bulk, carol, body(map[string]any{"role": "instructor"}), ""), http.StatusForbidden)

	// Without role, Open edX's shape exactly; the course's default mode.
	r = f.do("POST", bulk, f.staff, map[string]any{"identifiers": "erin", "action": "enroll", "courses": lifeCourse}, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", lifeCourse, "erin", stNone, stEnrolled))

	// With role: states carry it; the enrollment has the role and the mode.
	r = f.do("POST", bulk, f.staff, body(map[string]any{"role": "ta", "mode": "verified"}), "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", lifeCourse, "dave",
		`{"enrollment":false,"auto_enroll":false,"user":true,"allowed":false,"role":null}`,
		`{"enrollment":true,"auto_enroll":false,"user":true,"allowed":false,"role":"ta"}`))
	dave := f.do("GET", "/api/enrollments/"+f.pub("dave@example.com"), f.staff, nil, "")
	mustStatus(t, dave, http.StatusOK)
	if !strings.Contains(string(dave.Body), `"role":"ta"`) || !strings.Contains(string(dave.Body), `"mode":"verified"`) {
		t.Fatalf("dave %s", dave.Body)
	}

	// The active ta administers the course once the stream has run: lists it, and may
	// enroll (but not grant ta).
	daveTok := token(t, "dave", false)
	eventually(t, "ta becomes course admin", func() bool {
		return f.do("GET", "/api/courses/"+lifeCourse, daveTok, nil, "").Status == http.StatusOK
	})
	mustStatus(t, f.do("GET", "/api/courses/"+lifeCourse+"/enrollments", daveTok, nil, ""), http.StatusOK)
	mustStatus(t, f.do("POST", bulk, daveTok, map[string]any{"identifiers": "new@example.com", "action": "enroll", "courses": lifeCourse}, ""), http.StatusOK)
	mustStatus(t, f.do("POST", bulk, daveTok, map[string]any{"identifiers": "erin", "action": "enroll", "courses": lifeCourse, "role": "ta"}, ""), http.StatusForbidden)
	// A student has no such rights.
	mustStatus(t, f.do("GET", "/api/courses/"+lifeCourse, token(t, "erin", false), nil, ""), http.StatusNotFound)

	// Same request again: nothing changes; the role is reported on both sides.
	r = f.do("POST", bulk, f.staff, body(map[string]any{"role": "ta", "mode": "verified"}), "")
	jsonEqual(t, r.Body, expectedOne("enroll", lifeCourse, "dave",
		`{"enrollment":true,"auto_enroll":false,"user":true,"allowed":false,"role":"ta"}`,
		`{"enrollment":true,"auto_enroll":false,"user":true,"allowed":false,"role":"ta"}`))

	// Unenrolled, the ta loses the rights.
	mustStatus(t, f.do("POST", bulk, f.staff, map[string]any{"identifiers": "dave", "action": "unenroll", "courses": lifeCourse}, ""), http.StatusOK)
	eventually(t, "unenrolled ta loses course admin", func() bool {
		return f.do("GET", "/api/courses/"+lifeCourse, daveTok, nil, "").Status == http.StatusNotFound
	})
	// Roles and modes are for enrollments only.
	r = f.do("POST", bulk, f.staff, map[string]any{"identifiers": "dave", "action": "unenroll", "courses": lifeCourse, "role": "ta"}, "")
	mustStatus(t, r, http.StatusBadRequest)
}

type historyItem struct {
	At, Actor, From, To, Source string
	Reason                      *string
}

func (f *lifeFixture) history(t *testing.T, id, tok, query string) ([]historyItem, response) {
	t.Helper()
	r := f.do("GET", "/api/enrollments/"+id+"/history"+query, tok, nil, "")
	if r.Status != http.StatusOK {
		return nil, r
	}
	var items []historyItem
	if err := json.Unmarshal(r.Body, &items); err != nil {
		t.Fatal(err)
	}
	return items, r
}

func TestPatchEnrollmentAndHistory(t *testing.T) {
	f := newLifeFixture(t)
	bulk := "/api/bulk_enroll/v1/bulk_enroll/"
	mustStatus(t, f.do("POST", bulk, f.staff, map[string]any{"identifiers": "dave", "action": "enroll", "courses": lifeCourse, "reason": "term start"}, ""), http.StatusOK)
	id := f.pub("dave@example.com")
	carol := token(t, "carol", false)

	// Validation, permissions.
	r := f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"mode": "gold"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"mode":["\"gold\" is not a valid choice."]}`)
	r = f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"mode": "honor"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"non_field_errors":["Mode honor is not offered in course `+lifeCourse+`."]}`)
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"cohort": "Z"}, ""), http.StatusBadRequest)
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"end_at": "tomorrow"}, ""), http.StatusBadRequest)
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"state": "active"}, ""), http.StatusBadRequest)
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"role": "instructor"}, ""), http.StatusForbidden)
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, token(t, "erin", false), map[string]any{"mode": "verified"}, ""), http.StatusNotFound)
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+f.pub("nobody@example.com"), f.staff, map[string]any{"mode": "verified"}, ""), http.StatusNotFound)

	// A course admin changes mode and cohort at once: two audit entries.
	r = f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"mode": "verified", "cohort": "A"}, "")
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"mode":"verified"`) || !strings.Contains(string(r.Body), `"cohort":"A"`) {
		t.Fatalf("patched %s", r.Body)
	}
	// Staff grants instructor and sets an end date.
	r = f.do("PATCH", "/api/enrollments/"+id, f.staff, map[string]any{"role": "instructor", "end_at": "2027-06-30T00:00:00Z"}, "")
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"end_at":"2027-06-30T00:00:00Z"`) || !strings.Contains(string(r.Body), `"role":"instructor"`) {
		t.Fatalf("patched %s", r.Body)
	}
	// The same PATCH again changes nothing (no new entry).
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, f.staff, map[string]any{"role": "instructor", "end_at": "2027-06-30T00:00:00Z"}, ""), http.StatusOK)
	// A course admin may not take an instructor's role away.
	mustStatus(t, f.do("PATCH", "/api/enrollments/"+id, carol, map[string]any{"role": "student"}, ""), http.StatusForbidden)

	want := []historyItem{
		{Actor: "Bob", From: "unenrolled", To: "enrolled", Source: "bulk"},
		{Actor: "carol", From: "audit", To: "verified", Source: "api"},
		{Actor: "carol", From: "", To: "A", Source: "api"},
		{Actor: "Bob", From: "student", To: "instructor", Source: "api"},
		{Actor: "Bob", From: "", To: "2027-06-30T00:00:00Z", Source: "api"},
	}
	var got []historyItem
	eventually(t, "history complete", func() bool {
		got, _ = f.history(t, id, f.staff, "")
		return len(got) >= len(want)
	})
	if len(got) != len(want) {
		t.Fatalf("history %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Actor != w.Actor || g.From != w.From || g.To != w.To || g.Source != w.Source || g.At == "" {
			t.Fatalf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	if got[0].Reason == nil || *got[0].Reason != "term start" || got[1].Reason != nil {
		t.Fatalf("reasons %+v %+v", got[0].Reason, got[1].Reason)
	}

	// Pages of two, oldest first, following Link.
	var paged []historyItem
	query := "?page_size=2"
	for pages := 0; ; pages++ {
		items, r := f.history(t, id, f.staff, query)
		if items == nil {
			t.Fatalf("page: %d %s", r.Status, r.Body)
		}
		paged = append(paged, items...)
		link := r.Header.Get("Link")
		if link == "" {
			break
		}
		next := link[strings.Index(link, "<")+1 : strings.Index(link, ">")]
		query = next[strings.Index(next, "?"):]
		if pages > 5 {
			t.Fatal("too many pages")
		}
	}
	if len(paged) != len(want) {
		t.Fatalf("paged history has %d entries, want %d", len(paged), len(want))
	}
	for i := range want {
		if paged[i] != got[i] && (paged[i].From != got[i].From || paged[i].To != got[i].To) {
			t.Fatalf("page entry %d = %+v, want %+v", i, paged[i], got[i])
		}
	}

	// The learner sees their own history; another learner, or a tampered cursor, does not.
	if items, r := f.history(t, id, token(t, "dave", false), ""); items == nil {
		t.Fatalf("learner: %d %s", r.Status, r.Body)
	}
	if _, r := f.history(t, id, token(t, "erin", false), ""); r.Status != http.StatusNotFound {
		t.Fatalf("other learner: %d", r.Status)
	}
	if _, r := f.history(t, id, f.staff, "?cursor=xyz"); r.Status != http.StatusBadRequest {
		t.Fatalf("bad cursor: %d", r.Status)
	}
}
