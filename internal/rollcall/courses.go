package rollcall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// CourseInput is the body of PUT /api/courses/{course_id}.
type CourseInput struct {
	Title             *string  `json:"title"`
	Cohorts           []string `json:"cohorts"`
	Admins            []string `json:"admins"`
	InvitationTTLDays *int     `json:"invitation_ttl_days"`
	Modes             []string `json:"modes"`
	DefaultMode       *string  `json:"default_mode"`
	// EnrollmentDurationDays (0 = none), EndingNoticeDays (default 7, 0 = no notice) and
	// ReminderDays (days after an invitation that a reminder goes out).
	EnrollmentDurationDays *int  `json:"enrollment_duration_days"`
	EndingNoticeDays       *int  `json:"ending_notice_days"`
	ReminderDays           []int `json:"reminder_days"`
	RequireAcceptance      *bool `json:"require_acceptance"`
}

// PutCourse creates or replaces a course (staff only).
func (s *Service) PutCourse(ctx context.Context, actor Actor, id string, in CourseInput) (*Course, bool, error) {
	if err := actor.RequireStaff(); err != nil {
		return nil, false, err
	}
	v := &ValidationError{}
	if !ValidCourseKey(id) {
		v.Add("course_id", "Course key not valid: "+id)
	}
	c := &Course{ID: id, InvitationTTLDays: DefaultInvitationTTLDays, Cohorts: []string{}, Admins: []string{}}
	switch {
	case in.Title == nil:
		v.Add("title", "This field is required.")
	case strings.TrimSpace(*in.Title) == "":
		v.Add("title", "This field may not be blank.")
	case len(*in.Title) > 255:
		v.Add("title", "Ensure this field has no more than 255 characters.")
	case HasControl(*in.Title):
		v.Add("title", "This field may not contain control characters.")
	default:
		c.Title = strings.TrimSpace(*in.Title)
	}
	for _, name := range in.Cohorts {
		name = strings.TrimSpace(name)
		if name == "" || len(name) > 255 || strings.Contains(name, ",") || HasControl(name) {
			v.Add("cohorts", fmt.Sprintf("Not a valid cohort name: %q.", name))
			break
		}
		if !slices.Contains(c.Cohorts, name) {
			c.Cohorts = append(c.Cohorts, name)
		}
	}
	for _, a := range in.Admins {
		if !ValidUsername(a) {
			v.Add("admins", fmt.Sprintf("Not a valid username: %q.", a))
			break
		}
		c.Admins = append(c.Admins, a)
	}
	if in.InvitationTTLDays != nil {
		if d := *in.InvitationTTLDays; d < 1 || d > 365 {
			v.Add("invitation_ttl_days", "Ensure this value is between 1 and 365.")
		} else {
			c.InvitationTTLDays = d
		}
	}
	c.Modes, c.DefaultMode = []string{DefaultMode}, DefaultMode
	if in.Modes != nil {
		c.Modes = []string{}
		for _, m := range in.Modes {
			if !ValidMode(m) {
				v.Add("modes", fmt.Sprintf("%q is not a valid choice.", m))
				break
			}
			if !slices.Contains(c.Modes, m) {
				c.Modes = append(c.Modes, m)
			}
		}
		if len(c.Modes) == 0 {
			if len(in.Modes) == 0 {
				v.Add("modes", "This list may not be empty.")
			}
		} else {
			c.DefaultMode = c.Modes[0]
		}
	}
	if in.DefaultMode != nil {
		switch m := *in.DefaultMode; {
		case !ValidMode(m):
			v.Add("default_mode", fmt.Sprintf("%q is not a valid choice.", m))
		case !slices.Contains(c.Modes, m):
			v.Add("default_mode", fmt.Sprintf("Mode %s is not among the course's modes.", m))
		default:
			c.DefaultMode = m
		}
	}
	lifecycleInput(in, c, v)
	if err := v.OrNil(); err != nil {
		return nil, false, err
	}
	if n := c.approxItemBytes(); n > MaxCourseItemBytes {
		return nil, false, NonFieldError(fmt.Sprintf("The course is too large to store (about %d KB of title, cohorts and admins; at most %d KB).", n/1000, MaxCourseItemBytes/1000))
	}
	now := s.now()
	c.CreatedAt, c.UpdatedAt = now, now
	if old, err := s.Store.GetCourse(ctx, id); err == nil {
		c.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, unavailable("put course", err)
	}
	created, err := s.Store.PutCourse(ctx, c)
	if err != nil {
		return nil, false, unavailable("put course", err)
	}
	return c, created, nil
}

// GetCourse returns a course to staff or one of its admins; to anyone else it does not exist.
func (s *Service) GetCourse(ctx context.Context, actor Actor, id string) (*Course, error) {
	return s.managedCourse(ctx, actor, id, ErrNotFound) // whoever may not see a course learns nothing of it
}

// courseFor loads a course the actor may manage: staff, or one of its admins.
// Unknown course: 404; not permitted: 403.
func (s *Service) courseFor(ctx context.Context, actor Actor, courseID string) (*Course, error) {
	return s.managedCourse(ctx, actor, courseID, ErrForbidden)
}

// managedCourse loads a course for staff or one of its admins, and answers denied to others.
func (s *Service) managedCourse(ctx context.Context, actor Actor, courseID string, denied error) (*Course, error) {
	if !ValidCourseKey(courseID) {
		return nil, ErrNotFound
	}
	c, err := s.Store.GetCourse(ctx, courseID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get course", err)
	}
	if !actor.Staff && !c.IsAdmin(actor.Username) {
		return nil, denied
	}
	return c, nil
}
