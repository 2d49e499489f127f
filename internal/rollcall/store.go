package rollcall

import (
	"context"
	"time"
)

// Store is the persistence port of the domain. internal/dynamo implements it on DynamoDB.
// Reads of enrollments are strongly consistent; "missing" is not an error for batch reads.
type Store interface {
	ListingStore    // listing.go
	InvitationStore // invitations.go
	HistoryStore    // lifecycle.go

	GetCourse(ctx context.Context, id string) (*Course, error) // ErrNotFound
	GetCourses(ctx context.Context, ids []string) (map[string]*Course, error)
	PutCourse(ctx context.Context, c *Course) (created bool, err error)

	// CreateUser stores a user, unique by username and by email (one transaction);
	// *ConflictError when either is taken.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, username string) (*User, error) // ErrNotFound
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// RegistrationMark is an opaque value that changes whenever a user is created: equal marks
	// read at two times mean no user was created in between.
	RegistrationMark(ctx context.Context) (string, error)
	// ResolveIdentifiers finds the users behind bulk identifiers in batched reads: an identifier
	// with '@' is looked up as an email, any other as a username. The map is keyed by identifier.
	ResolveIdentifiers(ctx context.Context, identifiers []string) (map[string]*User, error)

	GetEnrollment(ctx context.Context, id string) (*Enrollment, error) // ErrNotFound
	GetEnrollments(ctx context.Context, ids []string) (map[string]*Enrollment, error)
	// PersonEnrollments lists every enrollment and invitation of one email.
	PersonEnrollments(ctx context.Context, email string) ([]*Enrollment, error)

	// LockCourses takes the bulk-write lease of each course (in sorted order, waiting while
	// another holder has it, up to wait) and returns the function that releases them.
	// A course that stays busy gives ErrCourseBusy. A lease lapses after ttl, or soon after
	// ctx's deadline (when Lambda stops the holder) if that comes first.
	LockCourses(ctx context.Context, courses []string, owner string, ttl, wait time.Duration) (unlock func(context.Context), err error)
	// PutEnrollments writes whole items in batches. Only a holder of the courses' leases may
	// call it. It returns the ids whose write failed after retries.
	PutEnrollments(ctx context.Context, es []*Enrollment) (failed map[string]error, err error)
	// SaveEnrollment writes one enrollment if its course is not leased and the stored version
	// is still prevVersion (0 = must not exist): ErrCourseBusy or ErrVersionChange otherwise.
	SaveEnrollment(ctx context.Context, e *Enrollment, prevVersion int64) error
	// CommitEnrollments writes es atomically if no lease holds any of courses and every
	// enrollment in read (id -> version read, 0 = absent) still has that version; es must be
	// among them. A *CourseBusyError or ErrVersionChange otherwise. It takes at least
	// SmallRequestItems courses and enrollments together.
	CommitEnrollments(ctx context.Context, courses []string, read map[string]int64, es []*Enrollment) error
	// AwaitCourse waits until no bulk lease holds the course, or gives ErrCourseBusy at deadline.
	AwaitCourse(ctx context.Context, courseID string, deadline time.Time) error
	// ReserveInvites counts n more new invitations by username on day (UTC, YYYY-MM-DD) if
	// that keeps the day's count at most limit (one conditional write); ErrInviteQuota if not.
	ReserveInvites(ctx context.Context, username, day string, n, limit int) error
}
