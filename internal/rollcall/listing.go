package rollcall

import (
	"context"
	"time"
)

// ListingStore is the read side of listing (docs/api.md#listing): paged queries by course, by
// user and by creation time. Every list is ordered newest first: created_at descending, then
// id descending (Boundary.Before), and a page starts strictly after the boundary of the
// previous one, so paging needs no server-side state.
type ListingStore interface {
	// CourseEnrollmentsPage lists the enrollments of one course (invitations included) that
	// q.Filter matches, created at or after q.Since, newest first (by Seq), strictly after
	// q.After, at most q.Limit.
	CourseEnrollmentsPage(ctx context.Context, courseID string, q PageQuery) (*EnrollmentPage, error)
	// RecentEnrollmentsPage lists the enrollments of registered users (states active and
	// unenrolled) of every course, created at or after q.Since, newest first, strictly after
	// q.After, at most q.Limit. q.Filter must be satisfied by every such enrollment (the
	// listing only ever asks with Filter.Registered).
	RecentEnrollmentsPage(ctx context.Context, q PageQuery) (*EnrollmentPage, error)
}

// Boundary is the position of an enrollment in a list: its creation time and id, and its
// place in its course's creation order (course lists are ordered by Seq, which follows
// creation time; the other lists by time and id).
type Boundary struct {
	CreatedAt time.Time
	ID        string
	Seq       int64
}

// BoundaryOf is the position of e.
func BoundaryOf(e *Enrollment) Boundary {
	return Boundary{CreatedAt: e.CreatedAt, ID: e.ID, Seq: e.Seq}
}

// Before reports whether b comes before o in a list (newer, or as new with a greater id).
func (b Boundary) Before(o Boundary) bool {
	if !b.CreatedAt.Equal(o.CreatedAt) {
		return b.CreatedAt.After(o.CreatedAt)
	}
	return b.ID > o.ID
}

// ListFilter selects enrollments. The zero value matches everything.
type ListFilter struct {
	// Registered keeps the enrollments of registered users in state active or unenrolled
	// (the so2 list: no invitations, nothing declined or expired).
	Registered bool
	// State keeps the enrollments whose effective state (Enrollment.Effective) as of Now is
	// State: "invited" leaves out invitations past expiry, "expired" takes them in.
	State State
	Now   time.Time
}

// Matches reports whether f selects e.
func (f ListFilter) Matches(e *Enrollment) bool {
	if f.Registered && !(e.Registered() && e.RealEnrollment()) {
		return false
	}
	if f.State != "" && e.Effective(f.Now) != f.State {
		return false
	}
	return true
}

// PageQuery is one page of a list.
type PageQuery struct {
	After  *Boundary // nil = from the newest
	Since  time.Time // zero = no lower bound on created_at
	Limit  int
	Filter ListFilter
}

// EnrollmentPage is what a store returns for a PageQuery.
type EnrollmentPage struct {
	Items []*Enrollment
	// More is true when items may remain after the last one. A store may say so without
	// being sure (the next page is then empty and says false).
	More bool
}
