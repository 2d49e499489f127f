package stream

import (
	"context"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// RoleStore keeps the set of usernames whose active ta or instructor enrollment makes them
// admins of a course (on the course item, so that a permission check reads nothing more).
// The audit function's store implements it (dynamo.Store); a store that does not is left out.
type RoleStore interface {
	// SetRoleAdmin adds (admin) or removes username; doing it twice changes nothing.
	SetRoleAdmin(ctx context.Context, courseID, username string, admin bool) error
}

// syncRoleAdmins applies every change that gives or takes course-admin rights (an active
// ta or instructor enrollment starting or ending, or its role changing). Stream records of one
// item come in order and a failed record is retried with those after it, so the set ends as
// the latest change left it. It returns the records whose update failed.
func (a *Auditor) syncRoleAdmins(ctx context.Context, changes []Change) map[string]bool {
	failed := map[string]bool{}
	rs, ok := a.Store.(RoleStore)
	if !ok {
		return failed
	}
	for _, c := range changes {
		if failed[c.Seq] {
			continue
		}
		was, is := c.Old.GivesAdmin(), c.New.GivesAdmin()
		var err error
		switch {
		case was && (!is || c.Old.Username != c.New.Username):
			err = rs.SetRoleAdmin(ctx, c.Old.CourseID, c.Old.Username, false)
			if err == nil && is {
				err = rs.SetRoleAdmin(ctx, c.New.CourseID, c.New.Username, true)
			}
		case is && !was:
			err = rs.SetRoleAdmin(ctx, c.New.CourseID, c.New.Username, true)
		}
		if err != nil {
			failed[c.Seq] = true
			a.log().ErrorContext(ctx, "audit: course admin rights not updated; retried", "course_id", rollcall.CourseOf(c.Old, c.New), "error", err.Error())
		}
	}
	return failed
}
