package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// The demo data that the sample events in events/ name: make run and make invoke ensure it, so
// that a newcomer's first invocation finds its course. The demo user is the staff account
// that make run's token and the samples' tokens speak for.
const (
	DemoCourseID = "course-v1:edX+DemoX+Demo_Course"
	DemoUsername = "staff"
	DemoEmail    = "staff@example.com"
)

// EnsureDemo creates the demo course and user unless they exist; what exists is left as it is
// (a course the user changed keeps the changes).
func (d *Deps) EnsureDemo(ctx context.Context) error {
	staff := rollcall.Actor{Username: DemoUsername, Email: DemoEmail, Staff: true}
	_, err := d.Service.GetCourse(ctx, staff, DemoCourseID)
	if errors.Is(err, rollcall.ErrNotFound) {
		title, ttl := "Demo Course", rollcall.DefaultInvitationTTLDays
		_, _, err = d.Service.PutCourse(ctx, staff, DemoCourseID, rollcall.CourseInput{Title: &title,
			Cohorts: []string{"cohort1", "cohort2"}, Admins: []string{"carol"}, InvitationTTLDays: &ttl})
	}
	if err != nil {
		return fmt.Errorf("demo course %s: %w", DemoCourseID, err)
	}
	_, err = d.Service.GetUser(ctx, staff, DemoUsername)
	if errors.Is(err, rollcall.ErrNotFound) {
		username, email := DemoUsername, DemoEmail
		_, err = d.Service.CreateUser(ctx, staff, rollcall.UserInput{Username: &username, Email: &email})
		var taken *rollcall.ConflictError
		if errors.As(err, &taken) {
			err = nil // the email belongs to another account: the demo needs none of its own
		}
	}
	if err != nil {
		return fmt.Errorf("demo user %s: %w", DemoUsername, err)
	}
	return d.ensureDemoJob(ctx)
}
