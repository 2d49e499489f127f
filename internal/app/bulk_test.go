package app_test

// Integration tests of bulk enroll through the real HTTP handlers, against DynamoDB Local.
// The cases follow Open edX's lms/djangoapps/bulk_enroll/tests/test_views.py, with its
// expected bodies, plus the Appsembler error bodies and rollcall's additions (docs/api.md#bulk-enroll).

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

const (
	courseKey     = "course-v1:edX+DemoX+Demo_Course"
	cohortCourse  = "course-v1:edX+Cohorts+2026"
	enrolledEmail = "enrolled@example.com"
	notEnrolled   = "NotEnrolledStudent"
)

var bulkPaths = []string{"/api/bulk_enroll/v1/bulk_enroll/", "/appsembler/bulk_enroll/"}

// fixture: staff "Bob", a course, a cohorted course, an enrolled and a not-enrolled student.
type fixture struct {
	*env
	staff string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := newEnv(t, "BulkEnrollFunction", "AdminFunction")
	f := &fixture{env: e, staff: token(t, "Bob", true)}
	mustStatus(t, e.do("PUT", "/api/courses/"+courseKey, f.staff, map[string]any{"title": "Demo Course"}, ""), http.StatusCreated)
	mustStatus(t, e.do("PUT", "/api/courses/"+cohortCourse, f.staff, map[string]any{"title": "Cohorts", "cohorts": []string{"cohort1", "cohort2"}, "admins": []string{"carol"}}, ""), http.StatusCreated)
	mustStatus(t, e.do("POST", "/api/users", f.staff, map[string]any{"username": "EnrolledStudent", "email": enrolledEmail}, ""), http.StatusCreated)
	mustStatus(t, e.do("POST", "/api/users", f.staff, map[string]any{"username": notEnrolled, "email": "notenrolled@example.com"}, ""), http.StatusCreated)
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": enrolledEmail, "action": "enroll", "courses": courseKey}, false)
	mustStatus(t, r, http.StatusOK)
	return f
}

// bulk posts a bulk body as JSON (useJSON) or as a form.
func (f *fixture) bulk(t *testing.T, path string, data map[string]any, useJSON bool) response {
	t.Helper()
	return f.bulkAs(t, path, f.staff, data, useJSON)
}

func (f *fixture) bulkAs(t *testing.T, path, tok string, data map[string]any, useJSON bool) response {
	t.Helper()
	if useJSON {
		return f.do("POST", path, tok, data, "")
	}
	form := url.Values{}
	for k, v := range data {
		form.Set(k, fmt.Sprint(v))
	}
	return f.do("POST", path, tok, form.Encode(), "application/x-www-form-urlencoded")
}

func (f *fixture) enrollment(t *testing.T, course, email string) *rollcall.Enrollment {
	t.Helper()
	e, err := f.deps.Store.GetEnrollment(context.Background(), rollcall.EnrollmentID(course, email))
	if err != nil {
		t.Fatalf("enrollment %s %s: %v", course, email, err)
	}
	return e
}

func expectedOne(action, course, identifier, before, after string) string {
	return fmt.Sprintf(`{"action":%q,"auto_enroll":false,"email_students":false,"courses":{%q:{"action":%q,"auto_enroll":false,"results":[{"identifier":%q,"before":%s,"after":%s}]}}}`,
		action, course, action, identifier, before, after)
}

const (
	stNone     = `{"enrollment":false,"auto_enroll":false,"user":true,"allowed":false}`
	stEnrolled = `{"enrollment":true,"auto_enroll":false,"user":true,"allowed":false}`
)

func TestBulkNonStaff(t *testing.T) {
	f := newFixture(t)
	for _, p := range bulkPaths {
		r := f.bulkAs(t, p, token(t, "learner", false), map[string]any{}, false)
		mustStatus(t, r, http.StatusForbidden)
		jsonEqual(t, r.Body, `{"detail":"You do not have permission to perform this action."}`)
		// A course admin may not touch a course that is not theirs.
		r = f.bulkAs(t, p, token(t, "carol", false), map[string]any{"identifiers": notEnrolled, "action": "enroll", "courses": courseKey}, true)
		mustStatus(t, r, http.StatusForbidden)
	}
}

func TestBulkCourseAdminOwnCourse(t *testing.T) {
	f := newFixture(t)
	r := f.bulkAs(t, bulkPaths[0], token(t, "carol", false), map[string]any{"identifiers": notEnrolled, "action": "enroll", "courses": cohortCourse}, true)
	mustStatus(t, r, http.StatusOK)
	if e := f.enrollment(t, cohortCourse, "notenrolled@example.com"); e.State != rollcall.StateActive || e.LastChange.By != "carol" {
		t.Fatalf("enrollment %+v", e)
	}
}

func TestBulkAuthErrors(t *testing.T) {
	f := newFixture(t)
	for _, p := range bulkPaths {
		r := f.do("POST", p, "", map[string]any{}, "")
		mustStatus(t, r, http.StatusUnauthorized)
		jsonEqual(t, r.Body, `{"detail":"Authentication credentials were not provided."}`)
		r = f.do("POST", p, "not-a-token", map[string]any{}, "")
		mustStatus(t, r, http.StatusUnauthorized)
		jsonEqual(t, r.Body, `{"detail":"Invalid Token."}`)
	}
}

func TestBulkMissingParams(t *testing.T) {
	f := newFixture(t)
	for _, p := range bulkPaths {
		r := f.bulk(t, p, map[string]any{}, false)
		mustStatus(t, r, http.StatusBadRequest)
		jsonEqual(t, r.Body, `{"identifiers":["This field is required."],"courses":["This field is required."],"action":["This field is required."]}`)
	}
}

func TestBulkBadAction(t *testing.T) {
	f := newFixture(t)
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": enrolledEmail, "action": "invalid-action", "courses": courseKey}, false)
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"action":["\"invalid-action\" is not a valid choice."]}`)
}

func TestBulkBadCourseKeyAndUnknownCourse(t *testing.T) {
	f := newFixture(t)
	r := f.bulk(t, bulkPaths[1], map[string]any{"identifiers": enrolledEmail, "action": "enroll", "courses": "not-a-course"}, true)
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"courses":["Course key not valid: not-a-course"]}`)
	r = f.bulk(t, bulkPaths[1], map[string]any{"identifiers": enrolledEmail, "action": "enroll", "courses": "course-v1:No+Such+Course"}, true)
	mustStatus(t, r, http.StatusNotFound)
	jsonEqual(t, r.Body, `{"detail":"Not found."}`)
}

func TestBulkInvalidIdentifiers(t *testing.T) {
	f := newFixture(t)
	for _, ident := range []string{"percivaloctavius@", "percivaloctavius"} {
		r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": ident, "action": "enroll", "email_students": false, "courses": courseKey}, false)
		mustStatus(t, r, http.StatusOK)
		jsonEqual(t, r.Body, fmt.Sprintf(`{"action":"enroll","auto_enroll":false,"email_students":false,"courses":{%q:{"action":"enroll","auto_enroll":false,"results":[{"identifier":%q,"invalidIdentifier":true}]}}}`, courseKey, ident))
	}
}

func TestBulkEnrollWithUsername(t *testing.T) {
	f := newFixture(t)
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": notEnrolled, "action": "enroll", "email_students": false, "courses": courseKey}, false)
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", courseKey, notEnrolled, stNone, stEnrolled))
	e := f.enrollment(t, courseKey, "notenrolled@example.com")
	if e.LastChange.Transition != rollcall.UnenrolledToEnrolled || e.Version != 1 || e.MailSeq != 0 {
		t.Fatalf("audit/mail: %+v %+v", e, e.LastChange)
	}
}

func TestBulkEnrollWithEmail(t *testing.T) {
	for _, useJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", useJSON), func(t *testing.T) {
			f := newFixture(t)
			r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "notenrolled@example.com", "action": "enroll", "email_students": false, "courses": courseKey}, useJSON)
			mustStatus(t, r, http.StatusOK)
			jsonEqual(t, r.Body, expectedOne("enroll", courseKey, "notenrolled@example.com", stNone, stEnrolled))
			if e := f.enrollment(t, courseKey, "notenrolled@example.com"); e.State != rollcall.StateActive || e.LastChange.Transition != rollcall.UnenrolledToEnrolled || e.MailSeq != 0 {
				t.Fatalf("%+v", e)
			}
		})
	}
}

func TestBulkUnenroll(t *testing.T) {
	for _, useJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", useJSON), func(t *testing.T) {
			f := newFixture(t)
			r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": enrolledEmail, "action": "unenroll", "email_students": false, "courses": courseKey}, useJSON)
			mustStatus(t, r, http.StatusOK)
			jsonEqual(t, r.Body, expectedOne("unenroll", courseKey, enrolledEmail, stEnrolled, stNone))
			if e := f.enrollment(t, courseKey, enrolledEmail); e.State != rollcall.StateUnenrolled || e.LastChange.Transition != rollcall.EnrolledToUnenrolled {
				t.Fatalf("%+v", e)
			}
		})
	}
}

func TestBulkCohortValidation(t *testing.T) {
	f := newFixture(t)
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": notEnrolled, "action": "enroll", "courses": courseKey, "cohorts": "cohort1,cohort2"}, false)
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"non_field_errors":["If provided, the cohorts and courses should have equal number of items."]}`)

	r = f.bulk(t, bulkPaths[0], map[string]any{"identifiers": notEnrolled, "action": "enroll", "courses": courseKey, "cohorts": "cohort1"}, false)
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, fmt.Sprintf(`{"non_field_errors":["cohort cohort1 not found in course %s."]}`, courseKey))

	r = f.bulk(t, bulkPaths[0], map[string]any{"identifiers": notEnrolled, "action": "unenroll", "courses": cohortCourse, "cohorts": "cohort1"}, false)
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"non_field_errors":["Cohorts can only be used for enrollments."]}`)
}

func withCohort(state, cohort string) string {
	c := "null"
	if cohort != "" {
		c = fmt.Sprintf("%q", cohort)
	}
	return strings.TrimSuffix(state, "}") + `,"cohort":` + c + `}`
}

func TestBulkCohorts(t *testing.T) {
	f := newFixture(t)
	enroll := func(cohort string) response {
		return f.bulk(t, bulkPaths[0], map[string]any{"identifiers": notEnrolled, "action": "enroll", "email_students": false, "courses": cohortCourse, "cohorts": cohort}, false)
	}
	r := enroll("cohort1")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", cohortCourse, notEnrolled, withCohort(stNone, ""), withCohort(stEnrolled, "cohort1")))
	e := f.enrollment(t, cohortCourse, "notenrolled@example.com")
	if e.Cohort != "cohort1" || e.LastChange.Transition != rollcall.UnenrolledToEnrolled {
		t.Fatalf("%+v", e)
	}
	// Re-add to the same cohort: a no-op, nothing written.
	r = enroll("cohort1")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", cohortCourse, notEnrolled, withCohort(stEnrolled, "cohort1"), withCohort(stEnrolled, "cohort1")))
	if again := f.enrollment(t, cohortCourse, "notenrolled@example.com"); again.Version != e.Version {
		t.Fatalf("a no-op wrote: version %d -> %d", e.Version, again.Version)
	}
	// Re-add to another cohort.
	r = enroll("cohort2")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, expectedOne("enroll", cohortCourse, notEnrolled, withCohort(stEnrolled, "cohort1"), withCohort(stEnrolled, "cohort2")))
	if e := f.enrollment(t, cohortCourse, "notenrolled@example.com"); e.Cohort != "cohort2" || e.LastChange.Transition != rollcall.EnrolledToEnrolled {
		t.Fatalf("%+v", e)
	}
}

func TestBulkMultipartAndRosterFile(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("action", "enroll")
	_ = mw.WriteField("courses", courseKey)
	_ = mw.WriteField("auto_enroll", "True")
	fw, _ := mw.CreateFormFile("identifiers", "roster.csv")
	_, _ = fw.Write([]byte("NotEnrolledStudent\nnew.person@example.com\r\nnot valid\n"))
	mw.Close()
	r := f.do("POST", bulkPaths[1], f.staff, buf.String(), mw.FormDataContentType())
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, fmt.Sprintf(`{"action":"enroll","auto_enroll":true,"email_students":false,"courses":{%q:{"action":"enroll","auto_enroll":true,"results":[
		{"identifier":"NotEnrolledStudent","before":%s,"after":%s},
		{"identifier":"new.person@example.com","before":{"enrollment":false,"allowed":false,"user":false,"auto_enroll":false},"after":{"enrollment":false,"allowed":true,"user":false,"auto_enroll":true}},
		{"identifier":"not","invalidIdentifier":true},
		{"identifier":"valid","invalidIdentifier":true}]}}}`, courseKey, stNone, stEnrolled))
}

func TestBulkRepeatedIdentifiers(t *testing.T) {
	f := newFixture(t)
	// The same person three times: by username, by email (another case) and by username again.
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": []string{notEnrolled, "NOTENROLLED@example.com", notEnrolled}, "action": "enroll", "courses": courseKey}, true)
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, fmt.Sprintf(`{"action":"enroll","auto_enroll":false,"email_students":false,"courses":{%q:{"action":"enroll","auto_enroll":false,"results":[
		{"identifier":%q,"before":%s,"after":%s},
		{"identifier":"NOTENROLLED@example.com","before":%s,"after":%s},
		{"identifier":%q,"before":%s,"after":%s}]}}}`, courseKey, notEnrolled, stNone, stEnrolled, stEnrolled, stEnrolled, notEnrolled, stEnrolled, stEnrolled))
	if e := f.enrollment(t, courseKey, "notenrolled@example.com"); e.Version != 1 {
		t.Fatalf("written %d times", e.Version)
	}
}

func TestBulkInvitationAndRegistration(t *testing.T) {
	f := newFixture(t)
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "Fresh@Example.com, other@example.com", "action": "enroll", "auto_enroll": true, "email_students": true, "courses": courseKey, "reason": "spring roster"}, true)
	mustStatus(t, r, http.StatusOK)
	inv := f.enrollment(t, courseKey, "fresh@example.com")
	if inv.State != rollcall.StateInvited || !inv.AutoEnroll || inv.TokenHash == "" || inv.MailKind != rollcall.MailInvited || inv.MailSeq != 1 ||
		inv.LastChange.Transition != rollcall.UnenrolledToAllowed || inv.LastChange.Reason != "spring roster" || inv.LastChange.By != "Bob" {
		t.Fatalf("invitation %+v %+v", inv, inv.LastChange)
	}
	if want := f.now.Add(14 * 24 * 60 * 60 * 1e9); !inv.ExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", inv.ExpiresAt, want)
	}
	// Registering the email turns the auto-enroll invitation into an enrollment.
	mustStatus(t, f.do("POST", "/api/users", f.staff, map[string]any{"username": "fresh", "email": "fresh@example.com"}, ""), http.StatusCreated)
	if e := f.enrollment(t, courseKey, "fresh@example.com"); e.State != rollcall.StateActive || e.Username != "fresh" || e.LastChange.Transition != rollcall.AllowedToEnrolled {
		t.Fatalf("after registration %+v", e)
	}
	// Unenroll revokes the other open invitation, with mail owed.
	r = f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "other@example.com", "action": "unenroll", "email_students": true, "courses": courseKey}, true)
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, fmt.Sprintf(`{"action":"unenroll","auto_enroll":false,"email_students":true,"courses":{%q:{"action":"unenroll","auto_enroll":false,"results":[
		{"identifier":"other@example.com","before":{"enrollment":false,"allowed":true,"user":false,"auto_enroll":true},"after":{"enrollment":false,"allowed":false,"user":false,"auto_enroll":false}}]}}}`, courseKey))
	if e := f.enrollment(t, courseKey, "other@example.com"); e.State != rollcall.StateUnenrolled || e.MailKind != rollcall.MailUnenrolled || e.MailSeq != 2 || e.LastChange.Transition != rollcall.AllowedToUnenrolled {
		t.Fatalf("revoked %+v", e)
	}
}

func TestUsersUniqueAndVisible(t *testing.T) {
	f := newFixture(t)
	r := f.do("POST", "/api/users", f.staff, map[string]any{"username": "notenrolledstudent", "email": "x@example.com"}, "")
	mustStatus(t, r, http.StatusConflict)
	r = f.do("POST", "/api/users", f.staff, map[string]any{"username": "someone", "email": "ENROLLED@example.com"}, "")
	mustStatus(t, r, http.StatusConflict)
	r = f.do("POST", "/api/users", f.staff, map[string]any{"username": "bad name", "email": "nope"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"username":["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."],"email":["Enter a valid email address."]}`)
	mustStatus(t, f.do("GET", "/api/users/"+notEnrolled, token(t, notEnrolled, false), nil, ""), http.StatusOK)
	mustStatus(t, f.do("GET", "/api/users/"+notEnrolled, token(t, "someoneelse", false), nil, ""), http.StatusForbidden)
	mustStatus(t, f.do("GET", "/api/users/nobody", f.staff, nil, ""), http.StatusNotFound)
	mustStatus(t, f.do("POST", "/api/users", token(t, "learner", false), map[string]any{"username": "x", "email": "x@example.com"}, ""), http.StatusForbidden)
}

func TestCourses(t *testing.T) {
	f := newFixture(t)
	r := f.do("GET", "/api/courses/"+cohortCourse, token(t, "carol", false), nil, "")
	mustStatus(t, r, http.StatusOK)
	// Whoever may not see a course gets the 404 of a course that does not exist.
	r = f.do("GET", "/api/courses/"+cohortCourse, token(t, "mallory", false), nil, "")
	mustStatus(t, r, http.StatusNotFound)
	jsonEqual(t, r.Body, `{"detail":"Not found."}`)
	mustStatus(t, f.do("GET", "/api/courses/course-v1:No+Such+Course", token(t, "mallory", false), nil, ""), http.StatusNotFound)
	r = f.do("PUT", "/api/courses/"+cohortCourse, f.staff, map[string]any{"title": "Renamed", "cohorts": []string{"cohort1"}}, "")
	mustStatus(t, r, http.StatusOK)
	r = f.do("PUT", "/api/courses/not-a-key", f.staff, map[string]any{"title": "x"}, "")
	mustStatus(t, r, http.StatusBadRequest)
	r = f.do("PUT", "/api/courses/"+cohortCourse, f.staff, map[string]any{"title": 5}, "")
	mustStatus(t, r, http.StatusBadRequest)
	mustStatus(t, f.do("GET", "/api/courses/course-v1:No+Such+Course", f.staff, nil, ""), http.StatusNotFound)
}

func TestBulkLimits(t *testing.T) {
	f := newFixture(t)
	ids := make([]string, 10_001)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d@example.com", i)
	}
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": ids, "action": "enroll", "courses": courseKey}, true)
	mustStatus(t, r, http.StatusRequestEntityTooLarge)
	big := `{"identifiers":"` + strings.Repeat("a", 1<<20) + `","action":"enroll","courses":"` + courseKey + `"}`
	r = f.do("POST", bulkPaths[0], f.staff, big, "application/json")
	mustStatus(t, r, http.StatusRequestEntityTooLarge)
	r = f.do("POST", bulkPaths[0], f.staff, `{"identifiers": [`, "application/json")
	mustStatus(t, r, http.StatusBadRequest)
	r = f.do("POST", bulkPaths[0], f.staff, `<xml/>`, "application/xml")
	mustStatus(t, r, http.StatusUnsupportedMediaType)
}

// Two concurrent requests on the same enrollments are serial, so neither update is lost and
// each response's before-state is the other's after-state or the start: by the version
// check of the optimistic commit (small requests) and by the lease (large ones).
func TestBulkConcurrentRequestsSerialize(t *testing.T) {
	t.Run("commit", func(t *testing.T) { testBulkConcurrentRequestsSerialize(t, false) })
	t.Run("lease", func(t *testing.T) { testBulkConcurrentRequestsSerialize(t, true) })
}

func testBulkConcurrentRequestsSerialize(t *testing.T, alwaysLease bool) {
	f := newFixture(t)
	if alwaysLease {
		f.deps.Service.CommitLimit = 1 // every request takes the leases
	}
	var wg sync.WaitGroup
	res := make([]response, 2)
	for i, cohort := range []string{"cohort1", "cohort2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = f.bulk(t, bulkPaths[0], map[string]any{"identifiers": notEnrolled + ",EnrolledStudent", "action": "enroll", "courses": cohortCourse, "cohorts": cohort}, true)
		}()
	}
	wg.Wait()
	var beforeCohorts, afterCohorts [2]any
	for i, r := range res {
		mustStatus(t, r, http.StatusOK)
		results := bulkResults(t, r, cohortCourse)
		if len(results) != 2 {
			t.Fatalf("%d results, want 2 (one per identifier)", len(results))
		}
		result := results[0] // notEnrolled's
		beforeCohorts[i] = result["before"].(map[string]any)["cohort"]
		afterCohorts[i] = result["after"].(map[string]any)["cohort"]
	}
	// One went first (before = null), the other saw its result.
	first, second := 0, 1
	if beforeCohorts[0] != nil {
		first, second = 1, 0
	}
	if beforeCohorts[first] != nil || beforeCohorts[second] != afterCohorts[first] {
		t.Fatalf("not serial: before %v after %v", beforeCohorts, afterCohorts)
	}
	e := f.enrollment(t, cohortCourse, "notenrolled@example.com")
	if e.Version != 2 || e.Cohort != afterCohorts[second] {
		t.Fatalf("final %+v, want version 2 and cohort %v", e, afterCohorts[second])
	}
}

// A small request into a course that a large request has leased waits for the lease and then
// commits; one that would wait past LeaseWait gets a 503 (docs/api.md#auth-and-errors) and writes nothing.
func TestBulkSmallRequestWaitsForLease(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	unlock, err := f.deps.Store.LockCourses(ctx, []string{courseKey}, "a-large-request", time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		unlock(ctx)
		close(released)
	}()
	mustStatus(t, f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "waiter@example.com", "action": "enroll", "courses": courseKey}, true), http.StatusOK)
	select {
	case <-released:
	default:
		t.Fatal("the request committed while the course was leased")
	}
	if e := f.enrollment(t, courseKey, "waiter@example.com"); e.State != rollcall.StateInvited {
		t.Fatalf("after the wait: %+v", e)
	}

	if _, err := f.deps.Store.LockCourses(ctx, []string{courseKey}, "a-stuck-request", time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	f.deps.Service.LeaseWait = 200 * time.Millisecond
	r := f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "late@example.com", "action": "enroll", "courses": courseKey}, true)
	mustStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), `"detail":"The course is busy`) {
		t.Fatalf("busy course: %v %s", r.Header, r.Body)
	}
	if _, err := f.deps.Store.GetEnrollment(ctx, rollcall.EnrollmentID(courseKey, "late@example.com")); err != rollcall.ErrNotFound {
		t.Fatalf("a refused request wrote: %v", err)
	}
}

// A small request (one transaction) is a handful of store calls, and costs what DynamoDB
// bills a transaction: 2 WCU for each enrollment it reads (written or only checked) and for
// the course's lease check, plus the sequence counter when it creates enrollments.
func TestBulkSmallRequestCost(t *testing.T) {
	f := newFixture(t)
	ids := []string{"s1@example.com", "s2@example.com", "s3@example.com", enrolledEmail, notEnrolled}
	body := map[string]any{"identifiers": ids, "action": "enroll", "courses": courseKey}
	m0 := f.deps.Store.Metrics.Snapshot()
	mustStatus(t, f.bulk(t, bulkPaths[0], body, true), http.StatusOK)
	m := f.deps.Store.Metrics.Snapshot().Sub(m0)
	t.Logf("5 identifiers, 4 changes: %d DynamoDB requests, %.1f read units, %.1f table + %.1f index write units",
		m.Requests, m.ReadUnits, m.TableWriteUnits, m.IndexWriteUnits)
	// course, registration mark (twice), identifiers, enrollments, seq counter, transaction
	if m.Requests > 8 {
		t.Fatalf("%d requests", m.Requests)
	}
	if want := 2.0*(5+1) + 1; m.TableWriteUnits > want {
		t.Fatalf("%.1f table write units, want at most %.1f", m.TableWriteUnits, want)
	}
	if e := f.enrollment(t, courseKey, "s1@example.com"); e.State != rollcall.StateInvited {
		t.Fatalf("s1: %+v", e)
	}
}

// The store calls of one bulk request of 100 identifiers are batched: a handful of requests,
// not one per identifier; and the same request again writes nothing.
func TestBulkBatchesStoreCalls(t *testing.T) {
	f := newFixture(t)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("learner%03d@example.com", i)
	}
	body := map[string]any{"identifiers": strings.Join(ids, ","), "action": "enroll", "courses": courseKey}
	m0 := f.deps.Store.Metrics.Snapshot()
	mustStatus(t, f.bulk(t, bulkPaths[0], body, true), http.StatusOK)
	m1 := f.deps.Store.Metrics.Snapshot()
	first := m1.Sub(m0)
	t.Logf("bulk enroll of 100 new learners: %d DynamoDB requests, %.1f read units, %.1f table + %.1f index write units",
		first.Requests, first.ReadUnits, first.TableWriteUnits, first.IndexWriteUnits)
	if first.Requests > 20 {
		t.Fatalf("%d requests for 100 identifiers: not batched", first.Requests)
	}
	if first.TableWriteUnits < 100 || first.TableWriteUnits > 105+8 { // 100 items, the seq counter, the lease's 4 items taken and released, a margin
		t.Fatalf("table write units %.1f for 100 changes", first.TableWriteUnits)
	}
	mustStatus(t, f.bulk(t, bulkPaths[0], body, true), http.StatusOK)
	repeat := f.deps.Store.Metrics.Snapshot().Sub(m1)
	t.Logf("the same request again: %d requests, %.1f read units, %.1f write units", repeat.Requests, repeat.ReadUnits, repeat.WriteUnits())
	if repeat.WriteUnits() != 0 {
		t.Fatalf("a no-op repeat wrote %.1f units", repeat.WriteUnits())
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	send := func(key string, body map[string]any) response {
		t.Helper()
		req := f.request("POST", bulkPaths[0], f.staff, body, "")
		req.Header.Set("Idempotency-Key", key)
		return f.serve(req)
	}
	body := map[string]any{"identifiers": notEnrolled + ",someone.new@example.com", "action": "enroll", "email_students": true, "courses": courseKey}
	first := send("key-1", body)
	mustStatus(t, first, http.StatusOK)
	m := f.deps.Store.Metrics.Snapshot()
	again := send("key-1", body)
	mustStatus(t, again, http.StatusOK)
	if !bytes.Equal(first.Body, again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, again.Body)
	}
	if w := f.deps.Store.Metrics.Snapshot().Sub(m).WriteUnits(); w != 0 {
		t.Fatalf("a replay wrote %.1f units", w)
	}
	if e := f.enrollment(t, courseKey, "someone.new@example.com"); e.Version != 1 || e.MailSeq != 1 {
		t.Fatalf("applied twice: %+v", e)
	}
	body["action"] = "unenroll"
	r := send("key-1", body)
	mustStatus(t, r, http.StatusUnprocessableEntity)
	jsonEqual(t, r.Body, `{"detail":"This Idempotency-Key was already used with another request."}`)
	// Another caller's key space is separate.
	mustStatus(t, send("key-2", body), http.StatusOK)

	// The Redu create: the replay carries the same invitation_url and mails nobody twice.
	create := func() response {
		req := f.request("POST", "/api/courses/"+courseKey+"/enrollments", f.staff, `{"enrollment": {"email": "redu@example.com"}}`, "application/json")
		req.Header.Set("Idempotency-Key", "create-1")
		return f.serve(req)
	}
	c1, c2 := create(), create()
	mustStatus(t, c1, http.StatusCreated)
	mustStatus(t, c2, http.StatusCreated)
	u1 := c1.json(t).(map[string]any)["invitation_url"]
	if u1 == nil || u1 != c2.json(t).(map[string]any)["invitation_url"] {
		t.Fatalf("invitation_url %v vs %v", u1, c2.json(t).(map[string]any)["invitation_url"])
	}
	if e := f.enrollment(t, courseKey, "redu@example.com"); e.Version != 1 || e.MailSeq != 1 || e.State != rollcall.StateInvited {
		t.Fatalf("create applied twice: %+v", e)
	}
}
