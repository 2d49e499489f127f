package app_test

// Integration tests of enrollment listing (docs/api.md#listing) through the real HTTP handlers,
// against DynamoDB Local: the so2 list and its filters, the Redu course and user lists and
// the enrollment resource, who sees what, and paging by signed cursor and Link header.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/app/web"
	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/rollcall"
)

const (
	listCourseA = "course-v1:Org+ListA+2026"
	listCourseB = "course-v1:Org+ListB+2026"
	listBaseURL = "http://rollcall.test"
)

// newListEnv serves the listing, bulk and admin functions over one fresh table.
func newListEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, "BulkEnrollFunction", "AdminFunction")
	api := mustAPI(t, e.deps)
	var routes []httpapi.Route
	ops := map[string]http.HandlerFunc{}
	for fn, fnOps := range map[string]map[string]http.HandlerFunc{
		"BulkEnrollFunction": api.BulkOps(), "AdminFunction": api.AdminOps(), "ListEnrollmentsFunction": api.ListOps(),
	} {
		routes = append(routes, web.Routes(fn)...)
		for k, v := range fnOps {
			ops[k] = v
		}
	}
	h, err := httpapi.Handler(e.deps.Log, routes, ops)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	return e
}

func TestListFunctionIsRegistered(t *testing.T) {
	if !slices.Contains(functions.LogicalIDs(), "ListEnrollmentsFunction") {
		t.Fatal("ListEnrollmentsFunction is not registered")
	}
	cfg := app.Config{Stage: "local", TableName: "t", Region: "us-east-1", JWTSecret: "x", SigningSecret: testSigningSecret}
	h, err := functions.Handler(context.Background(), "ListEnrollmentsFunction", cfg)
	if err != nil || h == nil {
		t.Fatalf("handler: %v", err)
	}
	d, err := app.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Every route of the function in template.yaml has an operation, and every operation a route.
	if _, err := web.Handler(d, "ListEnrollmentsFunction", mustAPI(t, d).ListOps()); err != nil {
		t.Fatal(err)
	}
}

// listFixture: staff "root"; course A administered by "ada", course B; users ada, bob, carol.
type listFixture struct {
	*env
	staff, ada, bob, carol string
}

func newListFixture(t *testing.T) *listFixture {
	t.Helper()
	e := newListEnv(t)
	f := &listFixture{env: e, staff: token(t, "root", true), ada: token(t, "ada", false), bob: token(t, "bob", false), carol: token(t, "carol", false)}
	mustStatus(t, e.do("PUT", "/api/courses/"+listCourseA, f.staff, map[string]any{"title": "A", "admins": []string{"ada"}}, ""), http.StatusCreated)
	mustStatus(t, e.do("PUT", "/api/courses/"+listCourseB, f.staff, map[string]any{"title": "B"}, ""), http.StatusCreated)
	for _, u := range []string{"ada", "bob", "carol"} {
		mustStatus(t, e.do("POST", "/api/users", f.staff, map[string]any{"username": u, "email": u + "@example.com"}, ""), http.StatusCreated)
	}
	return f
}

// putListed stores enrollments directly (fast fixtures; times backdated as needed). The
// store numbers a course's enrollments in the order they are written, and enrollments are
// written as they are created, so the fixtures go in in creation order (ties by id): write
// each course's fixtures in one call.
func (e *env) putListed(t *testing.T, es ...*rollcall.Enrollment) {
	t.Helper()
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b *rollcall.Enrollment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	failed, err := e.deps.Store.PutEnrollments(context.Background(), es)
	if err != nil || len(failed) > 0 {
		t.Fatalf("put enrollments: %v %v", err, failed)
	}
}

func listEnr(course, email, username string, st rollcall.State, created time.Time) *rollcall.Enrollment {
	e := &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email), CourseID: course, Email: email, Username: username,
		State: st, Role: rollcall.DefaultRole, Mode: rollcall.DefaultMode, CreatedAt: created, UpdatedAt: created, Version: 1}
	if st == rollcall.StateInvited {
		e.ExpiresAt = created.Add(14 * 24 * time.Hour)
	}
	return e
}

// so2Keys reads a so2 body and returns "course letter:username" per item, checking the
// exact item shape on the way.
func so2Keys(t *testing.T, r response) []string {
	t.Helper()
	mustStatus(t, r, http.StatusOK)
	var items []map[string]any
	if err := json.Unmarshal(r.Body, &items); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	created := regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$`)
	out := []string{}
	for _, it := range items {
		keys := make([]string, 0, len(it))
		for k := range it {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"course_id", "created", "email", "is_active", "mode", "username"}) {
			t.Fatalf("item keys %v", keys)
		}
		if !created.MatchString(it["created"].(string)) {
			t.Fatalf("created %q", it["created"])
		}
		c := it["course_id"].(string)
		out = append(out, c[len("course-v1:Org+List"):len("course-v1:Org+List")+1]+":"+it["username"].(string))
	}
	return out
}

func TestSo2ListFilters(t *testing.T) {
	f := newListFixture(t)
	now := f.clock()
	day := 24 * time.Hour
	f.putListed(t,
		listEnr(listCourseA, "bob@example.com", "bob", rollcall.StateActive, now.Add(-1*day-time.Hour)),
		listEnr(listCourseA, "carol@example.com", "carol", rollcall.StateUnenrolled, now.Add(-3*day-time.Hour)),
		listEnr(listCourseA, "dave@example.com", "", rollcall.StateInvited, now.Add(-2*day)), // not registered: never in so2
		listEnr(listCourseA, "erin@example.com", "erin", rollcall.StateDeclined, now.Add(-2*day)),
		listEnr(listCourseB, "bob@example.com", "bob", rollcall.StateActive, now.Add(-10*day)),
		listEnr(listCourseB, "ada@example.com", "ada", rollcall.StateActive, now.Add(-time.Hour)),
	)
	get := func(tok, query string) response { return f.do("GET", "/api/so2/v1/enrollments"+query, tok, nil, "") }

	// The exact body of one item.
	jsonEqual(t, get(f.staff, "?username=ada").Body, `[{"username":"ada","email":"ada@example.com","course_id":"`+listCourseB+`",
		"is_active":true,"mode":"audit","created":"`+now.Add(-time.Hour).Format("2006-01-02 15:04")+`"}]`)

	for _, tc := range []struct {
		tok, query string
		want       []string
	}{
		{f.staff, "", []string{"B:ada", "A:bob", "A:carol", "B:bob"}},
		{f.staff, "?course_id=" + url.QueryEscape(listCourseA), []string{"A:bob", "A:carol"}},
		{f.staff, "?course_id=" + listCourseA, []string{"A:bob", "A:carol"}}, // '+' unencoded
		{f.staff, "?username=bob", []string{"A:bob", "B:bob"}},
		{f.staff, "?email=BOB%40example.com", []string{"A:bob", "B:bob"}},
		{f.staff, "?days=2", []string{"B:ada", "A:bob"}},
		{f.staff, "?days=5", []string{"B:ada", "A:bob", "A:carol"}},
		{f.staff, "?course_id=" + url.QueryEscape(listCourseA) + "&days=2", []string{"A:bob"}},
		{f.staff, "?username=bob&course_id=" + url.QueryEscape(listCourseB), []string{"B:bob"}},
		{f.staff, "?username=bob&email=ada%40example.com", []string{}},
		{f.staff, "?username=nobody", []string{}},
		{f.staff, "?email=dave%40example.com", []string{}},
		{f.staff, "?course_id=not-a-course", []string{}},
		// A course admin: their course (a course_id filter is required for that), else their own.
		{f.ada, "?course_id=" + url.QueryEscape(listCourseA), []string{"A:bob", "A:carol"}},
		{f.ada, "?course_id=" + url.QueryEscape(listCourseA) + "&username=carol", []string{"A:carol"}},
		{f.ada, "", []string{"B:ada"}},
		{f.ada, "?course_id=" + url.QueryEscape(listCourseB), []string{"B:ada"}},
		// Anyone else: their own.
		{f.bob, "", []string{"A:bob", "B:bob"}},
		{f.bob, "?username=bob", []string{"A:bob", "B:bob"}},
		{f.bob, "?email=bob%40example.com&days=2", []string{"A:bob"}},
		{f.bob, "?course_id=" + url.QueryEscape(listCourseB), []string{"B:bob"}},
		{token(t, "nobody", false), "", []string{}},
	} {
		if got := so2Keys(t, get(tc.tok, tc.query)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
		}
	}
	forbidden := `{"detail":"You do not have permission to perform this action."}`
	for _, tc := range []struct{ tok, query string }{
		{f.bob, "?username=carol"}, {f.bob, "?email=carol%40example.com"},
		{f.ada, "?course_id=" + url.QueryEscape(listCourseB) + "&username=bob"}, {f.ada, "?username=bob"},
	} {
		r := get(tc.tok, tc.query)
		mustStatus(t, r, http.StatusForbidden)
		jsonEqual(t, r.Body, forbidden)
	}
	for q, want := range map[string]string{
		"?days=abc":       `{"days":["A valid integer is required."]}`,
		"?days=0":         `{"days":["Ensure this value is greater than or equal to 1."]}`,
		"?page_size=x":    `{"page_size":["A valid integer is required."]}`,
		"?page_size=1001": `{"page_size":["Ensure this value is less than or equal to 1000."]}`,
	} {
		r := get(f.staff, q)
		mustStatus(t, r, http.StatusBadRequest)
		jsonEqual(t, r.Body, want)
	}
	r := get("", "")
	mustStatus(t, r, http.StatusUnauthorized)
	jsonEqual(t, r.Body, `{"detail":"Authentication credentials were not provided."}`)
}

// nextLink returns the path and query of a Link rel="next", or "".
func nextLink(t *testing.T, r response) string {
	t.Helper()
	l := r.Header.Get("Link")
	if l == "" {
		return ""
	}
	m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(l)
	if m == nil || !strings.HasPrefix(m[1], listBaseURL+"/") {
		t.Fatalf("Link %q", l)
	}
	return strings.TrimPrefix(m[1], listBaseURL)
}

// followListPages GETs path and every next page; it returns the ids in order and the pages.
func (e *env) followListPages(t *testing.T, tok, path string, maxPage int) (ids []string, pages int) {
	t.Helper()
	for path != "" {
		r := e.do("GET", path, tok, nil, "")
		mustStatus(t, r, http.StatusOK)
		var items []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
			CourseID string `json:"course_id"`
		}
		if err := json.Unmarshal(r.Body, &items); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		if len(items) > maxPage {
			t.Fatalf("page of %d items, page_size %d", len(items), maxPage)
		}
		for _, it := range items {
			id := it.ID
			if id == "" { // so2 items have no id
				id = rollcall.EnrollmentID(it.CourseID, it.Username+"@example.com")
			}
			ids = append(ids, id)
		}
		pages++
		path = nextLink(t, r)
	}
	return ids, pages
}

func TestCoursePagingThroughLinks(t *testing.T) {
	e := newListEnv(t)
	staff := token(t, "root", true)
	mustStatus(t, e.do("PUT", "/api/courses/"+listCourseA, staff, map[string]any{"title": "A"}, ""), http.StatusCreated)
	mustStatus(t, e.do("PUT", "/api/courses/"+listCourseB, staff, map[string]any{"title": "B"}, ""), http.StatusCreated)
	now := e.clock()
	es := make([]*rollcall.Enrollment, 2500)
	for i := range es {
		// Four to a timestamp, so that the id tie-break matters; every 9th an invitation.
		u := fmt.Sprintf("learner%04d", i)
		st := rollcall.StateActive
		if i%9 == 0 {
			st = rollcall.StateInvited
		}
		es[i] = listEnr(listCourseA, u+"@example.com", u, st, now.Add(-time.Duration(i/4)*time.Minute))
	}
	e.putListed(t, es...)
	// Another course's enrollments must not leak in.
	e.putListed(t, listEnr(listCourseB, "learner0001@example.com", "learner0001", rollcall.StateActive, now))
	want := make([]string, 0, len(es))
	for _, x := range rollcall.PageOf(es, rollcall.PageQuery{}, nil).Items {
		want = append(want, e.deps.Service.PublicID(x)) // the API shows keyed ids
	}
	base := "/api/courses/" + listCourseA + "/enrollments"
	for _, size := range []int{1, 7, 1000} {
		start := time.Now()
		got, pages := e.followListPages(t, staff, fmt.Sprintf("%s?page_size=%d", base, size), size)
		if !slices.Equal(got, want) {
			t.Fatalf("page_size %d: %d ids in %d pages, want the %d in order", size, len(got), pages, len(want))
		}
		if least := (len(want) + size - 1) / size; pages < least || pages > least+1 {
			t.Errorf("page_size %d: %d pages", size, pages)
		}
		t.Logf("page_size %d: %d pages in %v", size, pages, time.Since(start).Round(time.Millisecond))
	}
	// The so2 list pages the same way (registered enrollments only).
	var so2Want []string
	for _, x := range rollcall.PageOf(es, rollcall.PageQuery{Filter: rollcall.ListFilter{Registered: true}}, nil).Items {
		so2Want = append(so2Want, x.ID)
	}
	got, _ := e.followListPages(t, staff, "/api/so2/v1/enrollments?page_size=250&course_id="+url.QueryEscape(listCourseA), 250)
	if !slices.Equal(got, so2Want) {
		t.Fatalf("so2: %d ids, want %d in order", len(got), len(so2Want))
	}
	// The Link keeps the other parameters and replaces the cursor.
	r := e.do("GET", base+"?page_size=5&state=active", staff, nil, "")
	next := nextLink(t, r)
	u, _ := url.Parse(next)
	if u.Path != base || u.Query().Get("page_size") != "5" || u.Query().Get("state") != "active" || u.Query().Get("cursor") == "" {
		t.Fatalf("next %q", next)
	}
	r2 := e.do("GET", next, staff, nil, "")
	u2, _ := url.Parse(nextLink(t, r2))
	if u2.Query().Get("cursor") == u.Query().Get("cursor") || len(u2.Query()["cursor"]) != 1 {
		t.Fatalf("cursor not replaced: %q", u2)
	}
}

func TestCursorErrors(t *testing.T) {
	f := newListFixture(t)
	now := f.clock()
	var fixtures []*rollcall.Enrollment
	for i := range 5 {
		u := fmt.Sprintf("p%d", i)
		fixtures = append(fixtures, listEnr(listCourseA, u+"@example.com", u, rollcall.StateActive, now.Add(-time.Duration(i)*time.Hour)),
			listEnr(listCourseB, u+"@example.com", u, rollcall.StateActive, now.Add(-time.Duration(i)*time.Hour)))
	}
	f.putListed(t, fixtures...)
	first := f.do("GET", "/api/courses/"+listCourseA+"/enrollments?page_size=2", f.staff, nil, "")
	next, _ := url.Parse(nextLink(t, first))
	cursor := next.Query().Get("cursor")
	tampered := []byte(cursor)
	if tampered[10] = 'A'; cursor[10] == 'A' {
		tampered[10] = 'B'
	}
	bad := `{"cursor":["Invalid cursor."]}`
	for name, path := range map[string]string{
		"tampered":       "/api/courses/" + listCourseA + "/enrollments?cursor=" + url.QueryEscape(string(tampered)),
		"truncated":      "/api/courses/" + listCourseA + "/enrollments?cursor=" + cursor[:len(cursor)-2],
		"garbage":        "/api/courses/" + listCourseA + "/enrollments?cursor=%00%ff%22",
		"other course":   "/api/courses/" + listCourseB + "/enrollments?cursor=" + cursor,
		"other filter":   "/api/courses/" + listCourseA + "/enrollments?state=active&cursor=" + cursor,
		"so2 list":       "/api/so2/v1/enrollments?course_id=" + url.QueryEscape(listCourseA) + "&cursor=" + cursor,
		"user list":      "/api/users/bob/enrollments?cursor=" + cursor,
		"so2 other user": "/api/so2/v1/enrollments?username=bob&cursor=" + cursor,
	} {
		r := f.do("GET", path, f.staff, nil, "")
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, body %s", name, r.Status, r.Body)
			continue
		}
		jsonEqual(t, r.Body, bad)
	}
	// The genuine one still works.
	mustStatus(t, f.do("GET", next.String(), f.staff, nil, ""), http.StatusOK)
}

// resource reads an enrollment resource.
func listResource(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return m
}

func TestReduResources(t *testing.T) {
	f := newListFixture(t)
	// Create (an invitation), get, delete (revoke) through the API.
	r := f.do("POST", "/api/courses/"+listCourseA+"/enrollments", f.ada, map[string]any{"enrollment": map[string]any{"email": "Dave@Example.com"}}, "")
	mustStatus(t, r, http.StatusCreated)
	created := listResource(t, r)
	id := created["id"].(string)
	if created["state"] != "invited" || created["invitation_url"] == nil {
		t.Fatalf("created %v", created)
	}
	r = f.do("GET", "/api/enrollments/"+id, f.ada, nil, "")
	mustStatus(t, r, http.StatusOK)
	got := listResource(t, r)
	if _, ok := got["invitation_url"]; ok {
		t.Error("GET shows invitation_url")
	}
	wantKeys := []string{"auto_enroll", "cohort", "course_id", "created_at", "email", "expires_at", "id", "is_active", "links", "mode", "role", "state", "updated_at", "username"}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("keys %v", keys)
	}
	if got["state"] != "invited" || got["email"] != "dave@example.com" || got["username"] != nil || got["is_active"] != false {
		t.Fatalf("resource %v", got)
	}
	if _, err := time.Parse(time.RFC3339, got["created_at"].(string)); err != nil {
		t.Errorf("created_at: %v", err)
	}
	links := got["links"].([]any)
	if l := links[0].(map[string]any); l["rel"] != "self" || l["href"] != listBaseURL+"/api/enrollments/"+id {
		t.Errorf("self link %v", l)
	}
	if l := links[1].(map[string]any); l["rel"] != "course" || l["href"] != listBaseURL+"/api/courses/"+listCourseA {
		t.Errorf("course link %v", l)
	}
	if l := links[2].(map[string]any); l["rel"] != "user" || l["href"] != nil {
		t.Errorf("user link %v", l)
	}
	// Who may see it: staff and the course admin. Anyone else gets the 404 of an id that does
	// not exist (no existence oracle); ids are keyed, so the plain hash of email and course
	// names nothing.
	pub := func(course, email string) string {
		return f.deps.Service.PublicID(&rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email)})
	}
	if id != pub(listCourseA, "dave@example.com") || id == rollcall.EnrollmentID(listCourseA, "dave@example.com") {
		t.Fatalf("id %s is not the keyed id", id)
	}
	mustStatus(t, f.do("GET", "/api/enrollments/"+id, f.staff, nil, ""), http.StatusOK)
	hidden := f.do("GET", "/api/enrollments/"+id, f.bob, nil, "")
	mustStatus(t, hidden, http.StatusNotFound)
	jsonEqual(t, hidden.Body, `{"detail":"Not found."}`)
	mustStatus(t, f.do("DELETE", "/api/enrollments/"+id, f.bob, nil, ""), http.StatusNotFound)
	mustStatus(t, f.do("GET", "/api/enrollments/"+pub(listCourseA, "nobody@example.com"), f.bob, nil, ""), http.StatusNotFound)
	mustStatus(t, f.do("GET", "/api/enrollments/"+pub(listCourseA, "nobody@example.com"), f.staff, nil, ""), http.StatusNotFound)
	mustStatus(t, f.do("GET", "/api/enrollments/"+rollcall.EnrollmentID(listCourseA, "dave@example.com"), f.staff, nil, ""), http.StatusNotFound)
	r = f.do("GET", "/api/enrollments/not-an-id", f.staff, nil, "")
	mustStatus(t, r, http.StatusNotFound)
	jsonEqual(t, r.Body, `{"detail":"Not found."}`)

	mustStatus(t, f.do("DELETE", "/api/enrollments/"+id, f.ada, nil, ""), http.StatusNoContent)
	if st := listResource(t, f.do("GET", "/api/enrollments/"+id, f.ada, nil, ""))["state"]; st != "unenrolled" {
		t.Fatalf("after delete: %v", st)
	}

	// An active enrollment (bulk enroll of a registered user): its own user sees it, a delete
	// unenrolls it, and so2 shows it inactive.
	mustStatus(t, f.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", f.staff, map[string]any{"identifiers": "bob", "courses": listCourseA, "action": "enroll"}, ""), http.StatusOK)
	bobA := pub(listCourseA, "bob@example.com")
	r = f.do("GET", "/api/enrollments/"+bobA, f.bob, nil, "")
	mustStatus(t, r, http.StatusOK)
	if m := listResource(t, r); m["state"] != "active" || m["username"] != "bob" || m["is_active"] != true {
		t.Fatalf("bob's: %v", m)
	}
	mustStatus(t, f.do("GET", "/api/enrollments/"+bobA, f.carol, nil, ""), http.StatusNotFound)
	mustStatus(t, f.do("DELETE", "/api/enrollments/"+bobA, f.staff, nil, ""), http.StatusNoContent)
	if m := listResource(t, f.do("GET", "/api/enrollments/"+bobA, f.bob, nil, "")); m["state"] != "unenrolled" || m["is_active"] != false {
		t.Fatalf("after delete: %v", m)
	}
	r = f.do("GET", "/api/so2/v1/enrollments?username=bob", f.staff, nil, "")
	jsonEqual(t, r.Body, `[{"username":"bob","email":"bob@example.com","course_id":"`+listCourseA+`","is_active":false,"mode":"audit","created":"`+f.clock().Format("2006-01-02 15:04")+`"}]`)
}

func TestCourseListStatesAndAccess(t *testing.T) {
	f := newListFixture(t)
	now := f.clock()
	f.putListed(t,
		listEnr(listCourseA, "bob@example.com", "bob", rollcall.StateActive, now.Add(-time.Hour)),
		listEnr(listCourseA, "carol@example.com", "carol", rollcall.StateUnenrolled, now.Add(-2*time.Hour)),
		listEnr(listCourseA, "open@example.com", "", rollcall.StateInvited, now.Add(-3*time.Hour)),
		listEnr(listCourseA, "late@example.com", "", rollcall.StateInvited, now.Add(-20*24*time.Hour)), // past its 14 days
		listEnr(listCourseA, "gone@example.com", "", rollcall.StateExpired, now.Add(-30*24*time.Hour)),
		listEnr(listCourseA, "no@example.com", "", rollcall.StateDeclined, now.Add(-4*time.Hour)),
		listEnr(listCourseB, "bob@example.com", "bob", rollcall.StateActive, now),
	)
	list := func(tok, query string) (emails, states []string) {
		r := f.do("GET", "/api/courses/"+listCourseA+"/enrollments"+query, tok, nil, "")
		mustStatus(t, r, http.StatusOK)
		var items []map[string]any
		if err := json.Unmarshal(r.Body, &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			emails = append(emails, strings.TrimSuffix(it["email"].(string), "@example.com"))
			states = append(states, it["state"].(string))
		}
		return emails, states
	}
	all, states := list(f.staff, "")
	if !slices.Equal(all, []string{"bob", "carol", "open", "no", "late", "gone"}) {
		t.Fatalf("all: %v", all)
	}
	if !slices.Equal(states, []string{"active", "unenrolled", "invited", "declined", "expired", "expired"}) {
		t.Fatalf("states: %v", states)
	}
	for state, want := range map[string][]string{
		"invited": {"open"}, "expired": {"late", "gone"}, "active": {"bob"}, "unenrolled": {"carol"}, "declined": {"no"},
	} {
		if got, _ := list(f.ada, "?state="+state); !slices.Equal(got, want) {
			t.Errorf("state=%s: %v, want %v", state, got, want)
		}
	}
	// Time passes: the open invitation expires too.
	f.advance(15 * 24 * time.Hour)
	if got, _ := list(f.staff, "?state=invited"); len(got) != 0 {
		t.Errorf("invited after expiry: %v", got)
	}
	if got, _ := list(f.staff, "?state=expired"); !slices.Equal(got, []string{"open", "late", "gone"}) {
		t.Errorf("expired after expiry: %v", got)
	}
	r := f.do("GET", "/api/courses/"+listCourseA+"/enrollments?state=approvedd", f.staff, nil, "")
	mustStatus(t, r, http.StatusBadRequest)
	jsonEqual(t, r.Body, `{"state":["\"approvedd\" is not a valid choice."]}`)
	mustStatus(t, f.do("GET", "/api/courses/"+listCourseA+"/enrollments", f.bob, nil, ""), http.StatusForbidden)
	mustStatus(t, f.do("GET", "/api/courses/"+listCourseB+"/enrollments", f.ada, nil, ""), http.StatusForbidden)
	mustStatus(t, f.do("GET", "/api/courses/course-v1:No+Such+Course/enrollments", f.staff, nil, ""), http.StatusNotFound)
}

func TestUserList(t *testing.T) {
	f := newListFixture(t)
	now := f.clock()
	f.putListed(t,
		listEnr(listCourseA, "bob@example.com", "bob", rollcall.StateActive, now.Add(-time.Hour)),
		listEnr(listCourseB, "bob@example.com", "bob", rollcall.StateInvited, now.Add(-2*time.Hour)),
		listEnr(listCourseA, "carol@example.com", "carol", rollcall.StateActive, now),
	)
	ids := func(r response) []string {
		mustStatus(t, r, http.StatusOK)
		var items []map[string]any
		if err := json.Unmarshal(r.Body, &items); err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, it := range items {
			out = append(out, it["course_id"].(string))
		}
		return out
	}
	if got := ids(f.do("GET", "/api/users/bob/enrollments", f.bob, nil, "")); !slices.Equal(got, []string{listCourseA, listCourseB}) {
		t.Errorf("own: %v", got)
	}
	q := "?courses_ids[]=" + url.QueryEscape(listCourseB) + "&courses_ids[]=course-v1:X+Y+Z"
	if got := ids(f.do("GET", "/api/users/bob/enrollments"+q, f.staff, nil, "")); !slices.Equal(got, []string{listCourseB}) {
		t.Errorf("courses_ids[]: %v", got)
	}
	if got := ids(f.do("GET", "/api/users/BOB/enrollments?courses_ids="+url.QueryEscape(listCourseA), f.bob, nil, "")); !slices.Equal(got, []string{listCourseA}) {
		t.Errorf("courses_ids: %v", got)
	}
	got, pages := f.followListPages(t, f.bob, "/api/users/bob/enrollments?page_size=1", 1)
	if len(got) != 2 || pages < 2 {
		t.Errorf("paged: %v in %d pages", got, pages)
	}
	mustStatus(t, f.do("GET", "/api/users/carol/enrollments", f.bob, nil, ""), http.StatusForbidden)
	mustStatus(t, f.do("GET", "/api/users/carol/enrollments", f.ada, nil, ""), http.StatusForbidden)
	r := f.do("GET", "/api/users/nobody/enrollments", f.staff, nil, "")
	mustStatus(t, r, http.StatusNotFound)
	jsonEqual(t, r.Body, `{"detail":"Not found."}`)
}
