package rollcall

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Listing (docs/api.md#listing): the so2 list, the Redu-style course and user lists, and one
// enrollment by id. Every list is newest first and paged by an authenticated cursor (see
// cursor.go).

// Page sizes of every list.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// maxDays bounds `days`; a larger window is the same as none (and cannot overflow).
const maxDays = 100_000

// ListResult is one page of a list: its items and, when more may remain, the cursor of the
// next page ("" otherwise).
type ListResult struct {
	Items []*Enrollment
	Next  string
}

// So2Query is the query string of GET /api/so2/v1/enrollments, as given ("" = absent).
type So2Query struct {
	CourseID string
	Username string
	Email    string
	Days     string
	PageSize string
	Cursor   string
}

// CourseListQuery is the query string of GET /api/courses/{course_id}/enrollments.
type CourseListQuery struct {
	State    string
	PageSize string
	Cursor   string
}

// UserListQuery is the query string of GET /api/users/{username}/enrollments.
type UserListQuery struct {
	CoursesIDs []string // courses_ids[]; empty = every course
	PageSize   string
	Cursor     string
}

// ListSo2Enrollments is the so2 list: enrollments of registered users (active and
// unenrolled), optionally of one course, one user (by username or email) and created within
// the last Days days. Staff see every enrollment; the admin of the course named by
// course_id sees that course's; anyone else sees only their own, and asking for someone
// else's is a 403.
func (s *Service) ListSo2Enrollments(ctx context.Context, actor Actor, q So2Query) (*ListResult, error) {
	courseID := strings.TrimSpace(q.CourseID)
	username := strings.TrimSpace(q.Username)
	email := NormalizeEmail(q.Email)

	ownOnly := false // the caller only sees their own enrollments
	var self *User   // then: the caller's account (nil if they have none)
	if !actor.Staff {
		admin := false
		if courseID != "" && ValidCourseKey(courseID) {
			c, err := s.Store.GetCourse(ctx, courseID)
			switch {
			case err == nil:
				admin = c.IsAdmin(actor.Username)
			case !errors.Is(err, ErrNotFound):
				return nil, unavailable("list enrollments: get course", err)
			}
		}
		if !admin {
			if username != "" && NormalizeUsername(username) != NormalizeUsername(actor.Username) {
				return nil, ErrForbidden
			}
			u, err := s.Store.GetUser(ctx, actor.Username)
			switch {
			case err == nil:
				self = u
			case !errors.Is(err, ErrNotFound):
				return nil, unavailable("list enrollments: get user", err)
			}
			own := NormalizeEmail(actor.Email)
			if self != nil {
				own = self.Email
			}
			if email != "" && email != own {
				return nil, ErrForbidden
			}
			username, ownOnly = actor.Username, true
		}
	}

	v := &ValidationError{}
	days, daysOK := parseDays(q.Days, v)
	limit := parsePageSize(q.PageSize, v)
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	now := s.now()
	var since time.Time
	if daysOK && days < maxDays {
		since = now.Add(-time.Duration(days) * 24 * time.Hour).Truncate(time.Microsecond)
	}
	daysKey := ""
	if daysOK {
		daysKey = strconv.Itoa(days)
	}
	scope := ListScope("so2", courseID, NormalizeUsername(username), email, daysKey)
	after, err := s.decodeCursor(scope, q.Cursor)
	if err != nil {
		return nil, err
	}
	pq := PageQuery{After: after, Since: since, Limit: limit, Filter: ListFilter{Registered: true, Now: now}}

	var page *EnrollmentPage
	switch {
	case courseID != "" && !ValidCourseKey(courseID):
		page = &EnrollmentPage{} // no course has this key
	case username != "" || email != "":
		user := self
		if !ownOnly && username != "" {
			u, err := s.Store.GetUser(ctx, username)
			switch {
			case err == nil:
				user = u
			case !errors.Is(err, ErrNotFound):
				return nil, unavailable("list enrollments: get user", err)
			}
		}
		if username != "" && (user == nil || email != "" && email != user.Email) {
			page = &EnrollmentPage{} // no such user, or not the one with this email
			break
		}
		if user != nil {
			email = user.Email
		}
		es, err := s.Store.PersonEnrollments(ctx, email)
		if err != nil {
			return nil, unavailable("list enrollments", err)
		}
		page = PageOf(es, pq, func(e *Enrollment) bool {
			return (courseID == "" || e.CourseID == courseID) &&
				(username == "" || NormalizeUsername(e.Username) == NormalizeUsername(username))
		})
	case courseID != "":
		if page, err = s.Store.CourseEnrollmentsPage(ctx, courseID, pq); err != nil {
			return nil, unavailable("list enrollments", err)
		}
	default:
		if page, err = s.Store.RecentEnrollmentsPage(ctx, pq); err != nil {
			return nil, unavailable("list enrollments", err)
		}
	}
	return s.result(scope, page), nil
}

// ListCourseEnrollments is the Redu course list: every enrollment of a course, invitations
// included, optionally in one (effective) state. Staff or the course's admins only.
func (s *Service) ListCourseEnrollments(ctx context.Context, actor Actor, courseID string, q CourseListQuery) (*ListResult, error) {
	v := &ValidationError{}
	state := ParseStateFilter(q.State, v)
	limit := parsePageSize(q.PageSize, v)
	scope := ListScope("course", courseID, string(state))
	var after *Boundary
	var err error
	if v.OrNil() == nil {
		after, err = s.decodeCursor(scope, q.Cursor)
	}
	pq := PageQuery{After: after, Limit: limit, Filter: ListFilter{State: state, Now: s.now()}}

	type pageOrErr struct {
		page *EnrollmentPage
		err  error
	}
	var early chan pageOrErr
	if actor.Staff && v.OrNil() == nil && err == nil && ValidCourseKey(courseID) {
		// Staff may list any course that exists: read the page while the course is looked
		// up, rather than after (one round trip less; the page is dropped on a 404).
		early = make(chan pageOrErr, 1)
		go func() {
			p, err := s.Store.CourseEnrollmentsPage(ctx, courseID, pq)
			early <- pageOrErr{p, err}
		}()
	}
	// A verified cursor was made by this server for this very course, which existed then
	// (courses are never deleted), so staff need no course read on later pages.
	followingCursor := actor.Staff && after != nil && err == nil && v.OrNil() == nil
	if !followingCursor {
		if _, cerr := s.courseFor(ctx, actor, courseID); cerr != nil {
			return nil, cerr // an unknown course (404) or a caller who may not list it (403) first
		}
	}
	if verr := v.OrNil(); verr != nil {
		return nil, verr
	}
	if err != nil {
		return nil, err
	}
	var page *EnrollmentPage
	if early != nil {
		r := <-early
		page, err = r.page, r.err
	} else {
		page, err = s.Store.CourseEnrollmentsPage(ctx, courseID, pq)
	}
	if err != nil {
		return nil, unavailable("list course enrollments", err)
	}
	return s.result(scope, page), nil
}

// maxBatchCourses is how many courses_ids a user list reads by id; more read the whole
// person partition.
const maxBatchCourses = 100

// ListUserEnrollments is the Redu user list: every enrollment and invitation of a user's
// email, optionally only in some courses. Staff or the user only; an unknown user is a 404.
func (s *Service) ListUserEnrollments(ctx context.Context, actor Actor, username string, q UserListQuery) (*ListResult, error) {
	u, err := s.GetUser(ctx, actor, username) // staff or self (403), then the user (404)
	if err != nil {
		return nil, err
	}
	v := &ValidationError{}
	limit := parsePageSize(q.PageSize, v)
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	var courses []string
	for _, c := range q.CoursesIDs {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(courses, c) {
			courses = append(courses, c)
		}
	}
	slices.Sort(courses)
	scope := ListScope(append([]string{"user", NormalizeUsername(u.Username), strconv.Itoa(len(courses))}, courses...)...)
	after, err := s.decodeCursor(scope, q.Cursor)
	if err != nil {
		return nil, err
	}

	var es []*Enrollment
	switch {
	case len(courses) > 0 && len(courses) <= maxBatchCourses:
		ids := make([]string, 0, len(courses))
		for _, c := range courses {
			ids = append(ids, EnrollmentID(c, u.Email))
		}
		byID, err := s.Store.GetEnrollments(ctx, ids)
		if err != nil {
			return nil, unavailable("list user enrollments", err)
		}
		for _, e := range byID {
			es = append(es, e)
		}
	default:
		if es, err = s.Store.PersonEnrollments(ctx, u.Email); err != nil {
			return nil, unavailable("list user enrollments", err)
		}
	}
	page := PageOf(es, PageQuery{After: after, Limit: limit}, func(e *Enrollment) bool {
		return len(courses) == 0 || slices.Contains(courses, e.CourseID)
	})
	return s.result(scope, page), nil
}

// GetEnrollment is GET /api/enrollments/{id} (a public id): staff, the course's admins and
// the enrollment's own user may see it; anyone else gets ErrNotFound, as for an enrollment
// that does not exist.
func (s *Service) GetEnrollment(ctx context.Context, actor Actor, publicID string) (*Enrollment, error) {
	e, err := s.lookupEnrollment(ctx, publicID, "get enrollment")
	if err != nil {
		return nil, err
	}
	if actor.Staff || e.Registered() && NormalizeUsername(e.Username) == NormalizeUsername(actor.Username) {
		return e, nil
	}
	c, err := s.Store.GetCourse(ctx, e.CourseID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, unavailable("get enrollment: get course", err)
	}
	if err != nil || !c.IsAdmin(actor.Username) {
		return nil, ErrNotFound
	}
	return e, nil
}

// PageOf pages an in-memory list (a person's enrollments): the items that q.Filter and keep
// (nil = all) select, created at or after q.Since, newest first, strictly after q.After, at
// most q.Limit (0 = all).
func PageOf(es []*Enrollment, q PageQuery, keep func(*Enrollment) bool) *EnrollmentPage {
	sel := make([]*Enrollment, 0, len(es))
	for _, e := range es {
		if !q.Filter.Matches(e) || keep != nil && !keep(e) {
			continue
		}
		if !q.Since.IsZero() && e.CreatedAt.Before(q.Since) {
			continue
		}
		if q.After != nil && !q.After.Before(BoundaryOf(e)) {
			continue
		}
		sel = append(sel, e)
	}
	slices.SortFunc(sel, func(a, b *Enrollment) int {
		switch {
		case BoundaryOf(a).Before(BoundaryOf(b)):
			return -1
		case BoundaryOf(b).Before(BoundaryOf(a)):
			return 1
		}
		return 0
	})
	if q.Limit > 0 && len(sel) > q.Limit {
		return &EnrollmentPage{Items: sel[:q.Limit], More: true}
	}
	return &EnrollmentPage{Items: sel}
}

// result turns a store page into a ListResult with the next page's cursor.
func (s *Service) result(scope string, p *EnrollmentPage) *ListResult {
	out := &ListResult{Items: p.Items}
	if out.Items == nil {
		out.Items = []*Enrollment{}
	}
	if p.More && len(p.Items) > 0 {
		out.Next = EncodeCursor(CursorKey(s.Keys.Current.Secret), scope, BoundaryOf(p.Items[len(p.Items)-1]))
	}
	return out
}

// decodeCursor reads the cursor parameter ("" = the first page).
func (s *Service) decodeCursor(scope, cursor string) (*Boundary, error) {
	if cursor == "" {
		return nil, nil
	}
	// Any key of the ring verifies: a cursor made just before a rotation still pages on.
	for _, k := range s.Keys.All() {
		if b, err := DecodeCursor(CursorKey(k.Secret), scope, cursor); err == nil {
			return &b, nil
		}
	}
	return nil, FieldError("cursor", "Invalid cursor.")
}
