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

	"github.com/rollcall/rollcall/internal/app/mail"
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
	mailer, err := mail.NewMailer(context.Background(), e.deps)
	if err != nil {
		t.Fatal(err)
	}
	mailer.Log = quiet
	lookup := func(_ context.Context, id string) (any, error) {
		if id == "MailerFunction" {
			return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				return mailer.Handle(ctx, ev)
			}, nil
		}
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return auditor.Handle(ctx, ev)
		}, nil
	}
	runStream(t, services, table, lookup, "AuditFunction", "MailerFunction")

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
	// The course list shows the end date too (the list indexes project end_at).
	r = f.do("GET", "/api/courses/"+lifeCourse+"/enrollments", f.staff, nil, "")
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"end_at":"2027-06-30T00:00:00Z"`) {
		t.Fatalf("the course list does not show end_at: %s", r.Body)
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

// End dates and reminders: the hourly run ends enrollments, owes one ending notice and one
// reminder per reminder day, and running it again (a schedule retry) does nothing more; the
// SES emulator receives each mail once.
func TestEndDatesNoticesAndReminders(t *testing.T) {
	f := newLifeFixture(t)
	ctx := context.Background()
	course := "course-v1:Org+Ends+2026"
	mustStatus(t, f.do("PUT", "/api/courses/"+course, f.staff, map[string]any{"title": "Ends",
		"ending_notice_days": 2, "reminder_days": []int{3, 1}, "enrollment_duration_days": 30}, ""), http.StatusCreated)
	learner, later, invitee := testenv.Address("ends"), testenv.Address("later"), testenv.Address("invitee")
	mustStatus(t, f.do("POST", "/api/users", f.staff, map[string]any{"username": "ends", "email": learner}, ""), http.StatusCreated)
	mustStatus(t, f.do("POST", "/api/users", f.staff, map[string]any{"username": "later", "email": later}, ""), http.StatusCreated)
	bulk := "/api/bulk_enroll/v1/bulk_enroll/"
	now := f.clock()
	endAt := now.Add(5 * 24 * time.Hour).Format(time.RFC3339)

	// Validation of the end fields.
	r := f.do("POST", bulk, f.staff, map[string]any{"identifiers": "ends", "action": "enroll", "courses": course, "end_at": "soon"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	r = f.do("POST", bulk, f.staff, map[string]any{"identifiers": "ends", "action": "enroll", "courses": course, "end_at": endAt, "duration_days": 3}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"non_field_errors":["Give end_at or duration_days, not both."]}`)
	mustStatus(t, f.do("POST", bulk, f.staff, map[string]any{"identifiers": "ends", "action": "enroll", "courses": course, "duration_days": 0}, ""), http.StatusBadRequest)

	mustStatus(t, f.do("POST", bulk, f.staff, map[string]any{"identifiers": "ends", "action": "enroll", "courses": course, "end_at": endAt}, ""), http.StatusOK)
	mustStatus(t, f.do("POST", bulk, f.staff, map[string]any{"identifiers": "later", "action": "enroll", "courses": course}, ""), http.StatusOK)
	mustStatus(t, f.do("POST", bulk, f.staff, map[string]any{"identifiers": invitee, "action": "enroll", "courses": course, "email_students": true}, ""), http.StatusOK)
	if e := f.deps.Store; e != nil {
		got, err := e.GetEnrollment(ctx, rollcall.EnrollmentID(course, later))
		if err != nil || !got.EndAt.Equal(now.AddDate(0, 0, 30).Truncate(time.Second)) {
			t.Fatalf("course duration: %v %v", got.EndAt, err)
		}
	}

	run := func() rollcall.ScheduledResult {
		t.Helper()
		res, err := f.deps.Service.ScheduledRun(ctx, f.clock(), time.Time{})
		if err != nil || !res.Lifecycle.Complete {
			t.Fatalf("run: %+v %v", res, err)
		}
		return res
	}
	want := func(res rollcall.ScheduledResult, completed, notices, reminders int) {
		t.Helper()
		if l := res.Lifecycle; l.Completed != completed || l.Notices != notices || l.Reminders != reminders {
			t.Fatalf("run did %+v, want completed %d, notices %d, reminders %d", l, completed, notices, reminders)
		}
	}
	want(run(), 0, 0, 0)
	f.advance(25 * time.Hour) // day 1: the first reminder
	want(run(), 0, 0, 1)
	want(run(), 0, 0, 0)
	f.advance(2 * 24 * time.Hour) // day 3: the second reminder and the ending notice (end - 2 days)
	want(run(), 0, 1, 1)
	want(run(), 0, 0, 0)
	f.advance(2 * 24 * time.Hour) // day 5: the end
	want(run(), 1, 0, 0)
	want(run(), 0, 0, 0)

	id := f.deps.Service.PublicID(&rollcall.Enrollment{ID: rollcall.EnrollmentID(course, learner)})
	r = f.do("GET", "/api/enrollments/"+id, f.staff, nil, "")
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"state":"completed"`) || !strings.Contains(string(r.Body), `"is_active":false`) {
		t.Fatalf("completed enrollment %s", r.Body)
	}
	r = f.do("GET", "/api/courses/"+course+"/enrollments?state=completed", f.staff, nil, "")
	mustStatus(t, r, http.StatusOK)
	var listed []map[string]any
	json.Unmarshal(r.Body, &listed)
	if len(listed) != 1 || listed[0]["id"] != id {
		t.Fatalf("?state=completed: %s", r.Body)
	}
	eventually(t, "history of the completion", func() bool {
		items, _ := f.history(t, id, f.staff, "")
		return len(items) == 2 && items[1].From == "enrolled" && items[1].To == "completed" && items[1].Source == "schedule"
	})

	// Mail: the invitation and two reminders to the invitee, one notice to the learner; none twice.
	testenv.WaitForEmails(t, invitee, 3, 20*time.Second)
	notices := testenv.WaitForEmails(t, learner, 1, 20*time.Second)
	if !strings.Contains(notices[0].Subject, "ends soon") {
		t.Fatalf("notice subject %q", notices[0].Subject)
	}
	time.Sleep(500 * time.Millisecond)
	if n, m := len(testenv.Emails(t, invitee)), len(testenv.Emails(t, learner)); n != 3 || m != 1 {
		t.Fatalf("invitee got %d mails (want 3), learner %d (want 1)", n, m)
	}
	reminders := 0
	for _, m := range testenv.Emails(t, invitee) {
		if strings.HasPrefix(m.Subject, "Reminder:") {
			reminders++
			if !strings.Contains(m.Body.Text, "/invitations/") {
				t.Fatalf("reminder without the link: %s", m.Body.Text)
			}
		}
	}
	if reminders != 2 {
		t.Fatalf("%d reminders", reminders)
	}
}

// A run that reaches its deadline leaves the rest for the next run, which finishes it.
func TestScheduledRunResumesAfterDeadline(t *testing.T) {
	f := newLifeFixture(t)
	ctx := context.Background()
	course := "course-v1:Org+Resume+2026"
	mustStatus(t, f.do("PUT", "/api/courses/"+course, f.staff, map[string]any{"title": "Resume", "ending_notice_days": 0}, ""), http.StatusCreated)
	var names []string
	for i := 0; i < 30; i++ {
		u := "res" + string(rune('a'+i/10)) + string(rune('a'+i%10))
		names = append(names, u)
		mustStatus(t, f.do("POST", "/api/users", f.staff, map[string]any{"username": u, "email": u + "@example.com"}, ""), http.StatusCreated)
	}
	mustStatus(t, f.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", f.staff, map[string]any{"identifiers": strings.Join(names, ","),
		"action": "enroll", "courses": course, "duration_days": 1}, ""), http.StatusOK)
	f.advance(25 * time.Hour)

	res, err := f.deps.Service.RunDue(ctx, f.clock(), time.Now().Add(-time.Second)) // deadline already passed
	if err != nil || res.Complete || res.Completed != 0 {
		t.Fatalf("past deadline: %+v %v", res, err)
	}
	res, err = f.deps.Service.RunDue(ctx, f.clock(), time.Now().Add(time.Minute))
	if err != nil || !res.Complete || res.Completed != 30 {
		t.Fatalf("next run: %+v %v", res, err)
	}
	res, _ = f.deps.Service.RunDue(ctx, f.clock(), time.Now().Add(time.Minute))
	if res.Completed != 0 || !res.Complete {
		t.Fatalf("third run: %+v", res)
	}
}

// Resend: the same link (or a new one), once a day, never for a declined invitation; an expired
// one needs extend; per course, only invitations not mailed recently.
func TestResendInvitations(t *testing.T) {
	e := newEnv(t, "BulkEnrollFunction", "AdminFunction", "ListEnrollmentsFunction")
	staff, carol := token(t, "Bob", true), token(t, "carol", false)
	ctx := context.Background()
	course := "course-v1:Org+Resend+2026"
	mustStatus(t, e.do("PUT", "/api/courses/"+course, staff, map[string]any{"title": "Resend", "admins": []string{"carol"}}, ""), http.StatusCreated)
	pub := func(email string) string {
		return e.deps.Service.PublicID(&rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email)})
	}
	stored := func(email string) *rollcall.Enrollment {
		t.Helper()
		x, err := e.deps.Store.GetEnrollment(ctx, rollcall.EnrollmentID(course, email))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	resend := func(email, tok string, body any) response {
		return e.do("POST", "/api/enrollments/"+pub(email)+"/resend", tok, body, "")
	}
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", staff, map[string]any{"identifiers": "ann@example.com,ben@example.com,cat@example.com",
		"action": "enroll", "courses": course, "email_students": true}, ""), http.StatusOK)
	before := stored("ann@example.com")
	if before.SendCount != 1 || before.LastSentAt.IsZero() {
		t.Fatalf("after the invitation: send_count %d, last_sent_at %v", before.SendCount, before.LastSentAt)
	}

	e.advance(time.Hour)
	r := resend("ann@example.com", carol, nil)
	mustStatus(t, r, http.StatusOK)
	var res map[string]any
	json.Unmarshal(r.Body, &res)
	if res["send_count"] != 2.0 || res["last_sent_at"] != e.clock().Format(time.RFC3339) || res["state"] != "invited" {
		t.Fatalf("resent %s", r.Body)
	}
	after := stored("ann@example.com")
	if after.TokenHash != before.TokenHash || after.MailSeq != before.MailSeq+1 || after.MailKind != rollcall.MailInvited {
		t.Fatalf("resend changed the link or owes no mail: %+v", after)
	}
	// A second resend within 24 hours: 429 with Retry-After.
	r = resend("ann@example.com", carol, map[string]any{})
	mustStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Whoever may not manage the course: 404.
	mustStatus(t, resend("ann@example.com", token(t, "mallory", false), nil), http.StatusNotFound)

	// A day later, with a new link: the old token dies.
	e.advance(25 * time.Hour)
	mustStatus(t, resend("ann@example.com", staff, map[string]any{"rotate": true}), http.StatusOK)
	if rotated := stored("ann@example.com"); rotated.TokenHash == before.TokenHash || rotated.ExpiresAt != before.ExpiresAt {
		t.Fatalf("rotate: hash %s (was %s), expiry %v (was %v)", rotated.TokenHash, before.TokenHash, rotated.ExpiresAt, before.ExpiresAt)
	}

	// Declined: 409 before any limit.
	token := e.deps.Service.InvitationToken(stored("ben@example.com"))
	if _, err := e.deps.Service.DeclineInvitation(ctx, token); err != nil {
		t.Fatal(err)
	}
	r = resend("ben@example.com", staff, nil)
	mustStatus(t, r, http.StatusConflict)
	jsonEqual(t, r.Body, `{"detail":"This invitation was declined."}`)

	// Per course: only cat is due (ann was resent a moment ago, ben declined).
	r = e.do("POST", "/api/courses/"+course+"/invitations/resend", carol, map[string]any{"not_sent_since_hours": 24}, "")
	mustStatus(t, r, http.StatusAccepted)
	jsonEqual(t, r.Body, `{"queued":1}`)
	r = e.do("POST", "/api/courses/"+course+"/invitations/resend", carol, map[string]any{"not_sent_since_hours": 24}, "")
	jsonEqual(t, r.Body, `{"queued":0}`)
	mustStatus(t, e.do("POST", "/api/courses/"+course+"/invitations/resend", token2(t), nil, ""), http.StatusForbidden)
	mustStatus(t, e.do("POST", "/api/courses/"+course+"/invitations/resend", carol, map[string]any{"not_sent_since_hours": -1}, ""), http.StatusBadRequest)

	// Expired (past its 14 days): 410 unless extended; extended, a new expiry and the same state.
	e.advance(15 * 24 * time.Hour)
	r = resend("cat@example.com", staff, nil)
	mustStatus(t, r, http.StatusGone)
	r = resend("cat@example.com", staff, map[string]any{"extend": true})
	mustStatus(t, r, http.StatusOK)
	cat := stored("cat@example.com")
	if cat.State != rollcall.StateInvited || !cat.ExpiresAt.After(e.clock()) || cat.LastChange.Transition != "from expired to allowed to enroll" {
		t.Fatalf("extended: %+v %+v", cat, cat.LastChange)
	}
	// An enrollment that is not an invitation: 409.
	mustStatus(t, e.do("POST", "/api/users", staff, map[string]any{"username": "dan", "email": "dan@example.com"}, ""), http.StatusCreated)
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", staff, map[string]any{"identifiers": "dan", "action": "enroll", "courses": course}, ""), http.StatusOK)
	mustStatus(t, resend("dan@example.com", staff, nil), http.StatusConflict)
}

func token2(t *testing.T) string { return token(t, "mallory", false) }

// Registered users invited rather than enrolled (invite_registered, or a course that requires
// acceptance): the result is allowed, not enrolled; they accept signed in.
func TestInviteRegistered(t *testing.T) {
	e := newEnv(t, "BulkEnrollFunction", "AdminFunction")
	staff := token(t, "Bob", true)
	ctx := context.Background()
	course, strict := "course-v1:Org+Invite+2026", "course-v1:Org+Strict+2026"
	mustStatus(t, e.do("PUT", "/api/courses/"+course, staff, map[string]any{"title": "Invite"}, ""), http.StatusCreated)
	r := e.do("PUT", "/api/courses/"+strict, staff, map[string]any{"title": "Strict", "require_acceptance": true}, "")
	mustStatus(t, r, http.StatusCreated)
	if !strings.Contains(string(r.Body), `"require_acceptance":true`) {
		t.Fatalf("course %s", r.Body)
	}
	mustStatus(t, e.do("POST", "/api/users", staff, map[string]any{"username": "fay", "email": "fay@example.com"}, ""), http.StatusCreated)
	bulk := "/api/bulk_enroll/v1/bulk_enroll/"
	invited := `{"enrollment":false,"auto_enroll":false,"user":true,"allowed":true}`

	r = e.do("POST", bulk, staff, map[string]any{"identifiers": "fay", "action": "enroll", "courses": course, "invite_registered": true}, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", course, "fay", stNone, invited))
	r = e.do("POST", bulk, staff, map[string]any{"identifiers": "fay", "action": "enroll", "courses": strict}, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", strict, "fay", stNone, invited))
	mustStatus(t, e.do("POST", bulk, staff, map[string]any{"identifiers": "fay", "action": "enroll", "courses": course, "invite_registered": "maybe"}, ""), http.StatusBadRequest)

	// She accepts signed in: active.
	inv, err := e.deps.Store.GetEnrollment(ctx, rollcall.EnrollmentID(course, "fay@example.com"))
	if err != nil || inv.State != rollcall.StateInvited || inv.Username != "fay" {
		t.Fatalf("invitation %+v %v", inv, err)
	}
	res, err := e.deps.Service.AcceptInvitation(ctx, e.deps.Service.InvitationToken(inv), &rollcall.Actor{Username: "fay", Email: "fay@example.com"})
	if err != nil || res.Enrollment.State != rollcall.StateActive {
		t.Fatalf("accept: %+v %v", res, err)
	}
	// Without the flag, an open invitation of a registered user is enrolled at once (as before).
	r = e.do("POST", bulk, staff, map[string]any{"identifiers": "fay", "action": "enroll", "courses": course}, "")
	jsonEqual(t, r.Body, expectedOne("enroll", course, "fay", stEnrolled, stEnrolled))
}
