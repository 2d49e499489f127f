package rollcall

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// listFake is an in-memory Store for the listing rules (the DynamoDB store is tested against
// DynamoDB Local in internal/dynamo and internal/app). Methods it lacks panic via the nil
// embedded Store.
type listFake struct {
	Store
	courses map[string]*Course
	users   map[string]*User // by normalized username
	es      []*Enrollment
	mu      sync.Mutex // calls: a staff course list reads its page in a goroutine that may outlive a 404
	calls   []string
}

func (f *listFake) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *listFake) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *listFake) GetCourse(_ context.Context, id string) (*Course, error) {
	if c := f.courses[id]; c != nil {
		return c, nil
	}
	return nil, ErrNotFound
}

func (f *listFake) GetUser(_ context.Context, username string) (*User, error) {
	if u := f.users[NormalizeUsername(username)]; u != nil {
		return u, nil
	}
	return nil, ErrNotFound
}

func (f *listFake) GetEnrollment(_ context.Context, id string) (*Enrollment, error) {
	for _, e := range f.es {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, ErrNotFound
}

func (f *listFake) GetEnrollments(_ context.Context, ids []string) (map[string]*Enrollment, error) {
	f.call("GetEnrollments")
	out := map[string]*Enrollment{}
	for _, e := range f.es {
		if slices.Contains(ids, e.ID) {
			out[e.ID] = e
		}
	}
	return out, nil
}

func (f *listFake) PersonEnrollments(_ context.Context, email string) ([]*Enrollment, error) {
	f.call("PersonEnrollments")
	var out []*Enrollment
	for _, e := range f.es {
		if e.Email == NormalizeEmail(email) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *listFake) CourseEnrollmentsPage(_ context.Context, courseID string, q PageQuery) (*EnrollmentPage, error) {
	f.call("CourseEnrollmentsPage")
	return PageOf(f.es, q, func(e *Enrollment) bool { return e.CourseID == courseID }), nil
}

func (f *listFake) RecentEnrollmentsPage(_ context.Context, q PageQuery) (*EnrollmentPage, error) {
	f.call("RecentEnrollmentsPage")
	q.Filter.Registered = true
	return PageOf(f.es, q, nil), nil
}

var listNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	listA = "course-v1:Org+A+2025"
	listB = "course-v1:Org+B+2025"
)

// newListFixture: listAda (admin of A) and listBob, carol are users; A and B have enrollments of
// each state; dave@example.com is only invited.
func newListFixture() (*Service, *listFake) {
	f := &listFake{
		courses: map[string]*Course{
			listA: {ID: listA, Admins: []string{"Ada"}},
			listB: {ID: listB},
		},
		users: map[string]*User{
			"ada":   {Username: "ada", Email: "ada@example.com"},
			"bob":   {Username: "bob", Email: "bob@example.com"},
			"carol": {Username: "carol", Email: "carol@example.com"},
		},
	}
	add := func(course, email, username string, st State, ageDays int) {
		e := &Enrollment{ID: EnrollmentID(course, email), CourseID: course, Email: email, Username: username,
			State: st, Mode: DefaultMode, Role: DefaultRole, CreatedAt: listNow.Add(-time.Duration(ageDays)*24*time.Hour - time.Hour)}
		if st == StateInvited {
			e.ExpiresAt = e.CreatedAt.Add(14 * 24 * time.Hour)
		}
		f.es = append(f.es, e)
	}
	add(listA, "bob@example.com", "bob", StateActive, 1)
	add(listA, "carol@example.com", "carol", StateUnenrolled, 3)
	add(listA, "dave@example.com", "", StateInvited, 2)   // open
	add(listA, "erin@example.com", "", StateInvited, 20)  // past expiry: effectively expired
	add(listA, "frank@example.com", "", StateDeclined, 5) // declined
	add(listB, "bob@example.com", "bob", StateActive, 10)
	add(listB, "ada@example.com", "ada", StateActive, 0)
	s := &Service{Store: f, Now: func() time.Time { return listNow }, Keys: NewKeyRing([]byte("test-signing-secret-0123456789abcdef"))}
	return s, f
}

func listKeys(es []*Enrollment) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.CourseID[len("course-v1:Org+"):len("course-v1:Org+")+1]+":"+e.Email)
	}
	return out
}

var (
	listStaff = Actor{Username: "root", Staff: true}
	listAda   = Actor{Username: "ada", Email: "ada@example.com"}
	listBob   = Actor{Username: "bob", Email: "bob@example.com"}
)

func TestSo2Visibility(t *testing.T) {
	s, _ := newListFixture()
	ctx := context.Background()
	cases := []struct {
		name  string
		actor Actor
		q     So2Query
		want  []string
		err   error
	}{
		{"staff all", listStaff, So2Query{}, []string{"B:ada@example.com", "A:bob@example.com", "A:carol@example.com", "B:bob@example.com"}, nil},
		{"staff course", listStaff, So2Query{CourseID: listA}, []string{"A:bob@example.com", "A:carol@example.com"}, nil},
		{"staff username", listStaff, So2Query{Username: "BOB"}, []string{"A:bob@example.com", "B:bob@example.com"}, nil},
		{"staff email", listStaff, So2Query{Email: "Bob@Example.com"}, []string{"A:bob@example.com", "B:bob@example.com"}, nil},
		{"staff username+course", listStaff, So2Query{Username: "bob", CourseID: listB}, []string{"B:bob@example.com"}, nil},
		{"staff username+other email", listStaff, So2Query{Username: "bob", Email: "ada@example.com"}, []string{}, nil},
		{"staff unknown user", listStaff, So2Query{Username: "nobody"}, []string{}, nil},
		{"staff days", listStaff, So2Query{Days: "2"}, []string{"B:ada@example.com", "A:bob@example.com"}, nil},
		{"staff course+days", listStaff, So2Query{CourseID: listA, Days: "2"}, []string{"A:bob@example.com"}, nil},
		{"staff bad course key", listStaff, So2Query{CourseID: "nope"}, []string{}, nil},
		{"admin own course", listAda, So2Query{CourseID: listA}, []string{"A:bob@example.com", "A:carol@example.com"}, nil},
		{"admin own course, a user", listAda, So2Query{CourseID: listA, Username: "carol"}, []string{"A:carol@example.com"}, nil},
		{"admin without course sees own", listAda, So2Query{}, []string{"B:ada@example.com"}, nil},
		{"admin other course sees own", listAda, So2Query{CourseID: listB}, []string{"B:ada@example.com"}, nil},
		{"admin other course, another user", listAda, So2Query{CourseID: listB, Username: "bob"}, nil, ErrForbidden},
		{"learner own", listBob, So2Query{}, []string{"A:bob@example.com", "B:bob@example.com"}, nil},
		{"learner own by name", listBob, So2Query{Username: "Bob"}, []string{"A:bob@example.com", "B:bob@example.com"}, nil},
		{"learner own by email", listBob, So2Query{Email: "BOB@example.com"}, []string{"A:bob@example.com", "B:bob@example.com"}, nil},
		{"learner own course", listBob, So2Query{CourseID: listB}, []string{"B:bob@example.com"}, nil},
		{"learner other user", listBob, So2Query{Username: "carol"}, nil, ErrForbidden},
		{"learner other email", listBob, So2Query{Email: "carol@example.com"}, nil, ErrForbidden},
		{"learner unknown course", listBob, So2Query{CourseID: "course-v1:X+Y+Z"}, []string{}, nil},
		{"no account", Actor{Username: "ghost"}, So2Query{}, []string{}, nil},
	}
	for _, tc := range cases {
		res, err := s.ListSo2Enrollments(ctx, tc.actor, tc.q)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := listKeys(res.Items); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSo2Routes(t *testing.T) {
	ctx := context.Background()
	for q, want := range map[So2Query]string{
		{}:                            "RecentEnrollmentsPage",
		{Days: "3"}:                   "RecentEnrollmentsPage",
		{CourseID: listA}:             "CourseEnrollmentsPage",
		{CourseID: listA, Days: "3"}:  "CourseEnrollmentsPage",
		{Username: "bob"}:             "PersonEnrollments",
		{Email: "bob@example.com"}:    "PersonEnrollments",
		{CourseID: listA, Email: "x"}: "PersonEnrollments",
	} {
		s, f := newListFixture()
		if _, err := s.ListSo2Enrollments(ctx, listStaff, q); err != nil {
			t.Fatal(err)
		}
		if calls := f.callLog(); len(calls) != 1 || calls[0] != want {
			t.Errorf("%+v: calls %v, want [%s]", q, calls, want)
		}
	}
}

func TestListValidation(t *testing.T) {
	s, _ := newListFixture()
	ctx := context.Background()
	check := func(name string, err error, field, msg string) {
		t.Helper()
		var ve *ValidationError
		if !errors.As(err, &ve) || !reflect.DeepEqual(ve.Fields[field], []string{msg}) {
			t.Errorf("%s: err %v, want %s: %s", name, err, field, msg)
		}
	}
	for _, d := range []string{"abc", "1.5", "2x", "--1"} {
		_, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: d})
		check("days="+d, err, "days", "A valid integer is required.")
	}
	for _, d := range []string{"0", "-3"} {
		_, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: d})
		check("days="+d, err, "days", "Ensure this value is greater than or equal to 1.")
	}
	for _, d := range []string{"7", " 7 ", "7.0", "+7", "99999999999999999999999"} {
		if _, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: d}); err != nil {
			t.Errorf("days=%q: %v", d, err)
		}
	}
	_, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{PageSize: "x"})
	check("page_size=x", err, "page_size", "A valid integer is required.")
	_, err = s.ListSo2Enrollments(ctx, listStaff, So2Query{PageSize: "0"})
	check("page_size=0", err, "page_size", "Ensure this value is greater than or equal to 1.")
	_, err = s.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{PageSize: "1001"})
	check("page_size=1001", err, "page_size", "Ensure this value is less than or equal to 1000.")
	_, err = s.ListUserEnrollments(ctx, listStaff, "bob", UserListQuery{PageSize: "-1"})
	check("user page_size=-1", err, "page_size", "Ensure this value is greater than or equal to 1.")
	_, err = s.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{State: "x"})
	check("state=x", err, "state", `"x" is not a valid choice.`)
	_, err = s.ListSo2Enrollments(ctx, listStaff, So2Query{Cursor: "garbage"})
	check("cursor", err, "cursor", "Invalid cursor.")
	// Both fields at once, as DRF reports them.
	_, err = s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: "x", PageSize: "y"})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Errorf("days+page_size: %v", err)
	}
}

func TestCourseListStatesAndAccess(t *testing.T) {
	s, _ := newListFixture()
	ctx := context.Background()
	for state, want := range map[string][]string{
		"":           {"A:bob@example.com", "A:dave@example.com", "A:carol@example.com", "A:frank@example.com", "A:erin@example.com"},
		"invited":    {"A:dave@example.com"},
		"expired":    {"A:erin@example.com"},
		"active":     {"A:bob@example.com"},
		"unenrolled": {"A:carol@example.com"},
		"declined":   {"A:frank@example.com"},
		"approved":   {"A:bob@example.com"}, // Redu's names
		"waiting":    {"A:dave@example.com"},
	} {
		res, err := s.ListCourseEnrollments(ctx, listAda, listA, CourseListQuery{State: state})
		if err != nil {
			t.Fatalf("state %q: %v", state, err)
		}
		if got := listKeys(res.Items); !reflect.DeepEqual(got, want) {
			t.Errorf("state %q: got %v, want %v", state, got, want)
		}
	}
	if _, err := s.ListCourseEnrollments(ctx, listAda, listB, CourseListQuery{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("ada on B: %v", err)
	}
	if _, err := s.ListCourseEnrollments(ctx, listBob, listA, CourseListQuery{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob on A: %v", err)
	}
	if _, err := s.ListCourseEnrollments(ctx, listStaff, "course-v1:No+Such+Course", CourseListQuery{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown course: %v", err)
	}
	if _, err := s.ListCourseEnrollments(ctx, listStaff, listB, CourseListQuery{}); err != nil {
		t.Errorf("staff on B: %v", err)
	}
}

func TestUserListAndGet(t *testing.T) {
	s, f := newListFixture()
	ctx := context.Background()
	res, err := s.ListUserEnrollments(ctx, listBob, "bob", UserListQuery{})
	if err != nil || !reflect.DeepEqual(listKeys(res.Items), []string{"A:bob@example.com", "B:bob@example.com"}) {
		t.Fatalf("own: %v %v", err, res)
	}
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
	res, err = s.ListUserEnrollments(ctx, listStaff, "BOB", UserListQuery{CoursesIDs: []string{listB, "course-v1:X+Y+Z", listB}})
	if err != nil || !reflect.DeepEqual(listKeys(res.Items), []string{"B:bob@example.com"}) {
		t.Fatalf("courses_ids: %v %v", err, res)
	}
	if calls := f.callLog(); !reflect.DeepEqual(calls, []string{"GetEnrollments"}) {
		t.Errorf("courses_ids read with %v", calls)
	}
	if _, err := s.ListUserEnrollments(ctx, listBob, "carol", UserListQuery{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob on carol: %v", err)
	}
	if _, err := s.ListUserEnrollments(ctx, listAda, "carol", UserListQuery{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("admin on carol: %v", err)
	}
	if _, err := s.ListUserEnrollments(ctx, listStaff, "nobody", UserListQuery{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}

	pub := func(course, email string) string { return s.PublicID(&Enrollment{ID: EnrollmentID(course, email)}) }
	bobB := pub(listB, "bob@example.com")
	carolA := pub(listA, "carol@example.com")
	for _, tc := range []struct {
		actor Actor
		id    string
		err   error
	}{
		{listStaff, bobB, nil}, {listBob, bobB, nil}, {listAda, carolA, nil}, {Actor{Username: "CAROL"}, carolA, nil},
		// Whoever may not see an enrollment gets 404, as for one that does not exist; the
		// store id (a plain hash of email and course) is not an id the API knows.
		{listAda, bobB, ErrNotFound}, {listBob, carolA, ErrNotFound}, {listBob, pub(listA, "nobody@example.com"), ErrNotFound},
		{listStaff, pub(listB, "nobody@example.com"), ErrNotFound}, {listStaff, "bad id", ErrNotFound},
		{listStaff, EnrollmentID(listB, "bob@example.com"), ErrNotFound},
	} {
		if _, err := s.GetEnrollment(ctx, tc.actor, tc.id); !errors.Is(err, tc.err) {
			t.Errorf("%s get %s: %v, want %v", tc.actor.Username, tc.id, err, tc.err)
		}
	}
}

// Paging follows the cursor through every item once, in order, and the cursor is bound to
// its list and filters.
func TestPagingAndCursorBinding(t *testing.T) {
	s, f := newListFixture()
	ctx := context.Background()
	// Many enrollments with equal times, to exercise the id tie-break.
	for i := range 57 {
		email := fmt.Sprintf("u%02d@example.com", i)
		f.es = append(f.es, &Enrollment{ID: EnrollmentID(listA, email), CourseID: listA, Email: email,
			State: StateInvited, CreatedAt: listNow.Add(-time.Duration(i%5) * time.Minute)})
	}
	all, err := s.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{PageSize: "1000"})
	if err != nil || all.Next != "" {
		t.Fatal(err, all.Next)
	}
	for _, size := range []string{"1", "7", "62", "100"} {
		var got []*Enrollment
		cursor := ""
		for pages := 0; ; pages++ {
			res, err := s.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{PageSize: size, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, res.Items...)
			if res.Next == "" {
				break
			}
			cursor = res.Next
		}
		if !reflect.DeepEqual(listKeys(got), listKeys(all.Items)) {
			t.Errorf("page_size %s: %d items, want %d in order", size, len(got), len(all.Items))
		}
	}
	first, _ := s.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{PageSize: "2"})
	for name, call := range map[string]func() error{
		"other state": func() error {
			_, err := s.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{State: "invited", Cursor: first.Next})
			return err
		},
		"other course": func() error {
			_, err := s.ListCourseEnrollments(ctx, listStaff, listB, CourseListQuery{Cursor: first.Next})
			return err
		},
		"so2": func() error {
			_, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{CourseID: listA, Cursor: first.Next})
			return err
		},
		"user": func() error {
			_, err := s.ListUserEnrollments(ctx, listStaff, "bob", UserListQuery{Cursor: first.Next})
			return err
		},
		"other secret": func() error {
			s2 := *s
			s2.Keys = NewKeyRing([]byte("another-secret-0123456789abcdef!"))
			_, err := s2.ListCourseEnrollments(ctx, listStaff, listA, CourseListQuery{Cursor: first.Next})
			return err
		},
	} {
		var ve *ValidationError
		if err := call(); !errors.As(err, &ve) || ve.Fields["cursor"] == nil {
			t.Errorf("%s: %v, want a cursor error", name, err)
		}
	}
	// Days is bound too: a cursor of days=3 does not page days=4.
	r3, _ := s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: "30", PageSize: "1"})
	if _, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: "4", Cursor: r3.Next}); err == nil {
		t.Error("days cursor replayed with other days")
	}
	if _, err := s.ListSo2Enrollments(ctx, listStaff, So2Query{Days: "30", Cursor: r3.Next}); err != nil {
		t.Error(err)
	}
}

func TestPageOf(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id string, min int) *Enrollment {
		return &Enrollment{ID: id, State: StateActive, Username: "u", CreatedAt: t0.Add(time.Duration(min) * time.Minute)}
	}
	es := []*Enrollment{mk("a", 1), mk("c", 2), mk("b", 2), mk("d", 0)}
	p := PageOf(es, PageQuery{Limit: 2}, nil)
	if got := []string{p.Items[0].ID, p.Items[1].ID}; !reflect.DeepEqual(got, []string{"c", "b"}) || !p.More {
		t.Fatalf("first page %v more=%v", got, p.More)
	}
	b := BoundaryOf(p.Items[1])
	p = PageOf(es, PageQuery{After: &b, Limit: 2}, nil)
	if got := []string{p.Items[0].ID, p.Items[1].ID}; !reflect.DeepEqual(got, []string{"a", "d"}) || p.More {
		t.Fatalf("second page %v more=%v", got, p.More)
	}
	p = PageOf(es, PageQuery{Since: t0.Add(time.Minute)}, nil)
	if len(p.Items) != 3 {
		t.Fatalf("since: %d items", len(p.Items))
	}
}
