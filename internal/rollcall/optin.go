package rollcall

import (
	"context"
	"strings"
	"time"
)

// Email opt-in per organization (Open edX's UserOrgTag "email-optin", docs/api.md#email-opt-in):
// a learner says, for the organization of a course, whether it may email them; staff read
// the answers as a CSV, one row per active enrollment in the organization's courses.

// OptIn is one user's answer for one organization.
type OptIn struct {
	OptedIn bool
	SetAt   time.Time
}

// OptInStore keeps the answers and finds an organization's courses; internal/dynamo
// implements it.
type OptInStore interface {
	SetEmailOptIn(ctx context.Context, username, org string, in OptIn) error
	// EmailOptIns reads the answers of many users for one organization (batched), keyed by
	// lower-case username.
	EmailOptIns(ctx context.Context, org string, usernames []string) (map[string]OptIn, error)
	// OrgCourses lists the ids of the courses whose key names org (any case).
	OrgCourses(ctx context.Context, org string) ([]string, error)
}

// OptIns are the email opt-in use cases.
type OptIns struct {
	Svc   *Service
	Store OptInStore
}

var orgPattern = lazyRegexp(`^[A-Za-z0-9_.~-]{1,255}$`) // compiled on first use: {1,255} is a large program

// CourseOrg is the organization of a course key ("" for something that is not one).
func CourseOrg(courseID string) string {
	if !ValidCourseKey(courseID) {
		return ""
	}
	if rest, ok := strings.CutPrefix(courseID, "course-v1:"); ok {
		org, _, _ := strings.Cut(rest, "+")
		return org
	}
	org, _, _ := strings.Cut(courseID, "/")
	return org
}

// Set is POST preferences/email_opt_in: the caller's answer for the course's organization.
// optIn is true for "True" in any case (or a JSON true), false for anything else.
func (o *OptIns) Set(ctx context.Context, actor Actor, courseID *string, optIn *bool) error {
	v := &ValidationError{}
	org := ""
	switch {
	case courseID == nil || *courseID == "":
		v.Add("course_id", "This field is required.")
	default:
		if org = CourseOrg(*courseID); org == "" {
			v.Add("course_id", "Course key not valid: "+truncate(*courseID, 300))
		}
	}
	if optIn == nil {
		v.Add("email_opt_in", "This field is required.")
	}
	if err := v.OrNil(); err != nil {
		return err
	}
	if err := o.Store.SetEmailOptIn(ctx, actor.Username, org, OptIn{OptedIn: *optIn, SetAt: o.Svc.now().UTC()}); err != nil {
		return unavailable("set email opt-in", err)
	}
	return nil
}

// OptInRow is one row of the report.
type OptInRow struct {
	Username, Email, CourseID string
	OptIn                     *OptIn // nil: never answered
}

// Report is GET /api/user/v1/email_opt_in/?org=X (staff): row calls fn once per active
// enrollment of a registered user in the organization's courses, course by course.
func (o *OptIns) Report(ctx context.Context, actor Actor, org string, fn func(OptInRow) error) error {
	if err := actor.RequireStaff(); err != nil {
		return err
	}
	if org == "" {
		return FieldError("org", "This field is required.")
	}
	if !orgPattern().MatchString(org) {
		return FieldError("org", "Enter a valid organization.")
	}
	courses, err := o.Store.OrgCourses(ctx, org)
	if err != nil {
		return unavailable("organization courses", err)
	}
	for _, c := range courses {
		q := PageQuery{Limit: 1000, Filter: ListFilter{State: StateActive, Now: o.Svc.now()}}
		for {
			page, err := o.Svc.Store.CourseEnrollmentsPage(ctx, c, q)
			if err != nil {
				return unavailable("course enrollments", err)
			}
			var names []string
			for _, e := range page.Items {
				if e.Username != "" {
					names = append(names, e.Username)
				}
			}
			answers, err := o.Store.EmailOptIns(ctx, org, names)
			if err != nil {
				return unavailable("email opt-ins", err)
			}
			for _, e := range page.Items {
				if e.Username == "" {
					continue
				}
				row := OptInRow{Username: e.Username, Email: e.Email, CourseID: e.CourseID}
				if a, ok := answers[NormalizeUsername(e.Username)]; ok {
					row.OptIn = &a
				}
				if err := fn(row); err != nil {
					return err
				}
			}
			if !page.More || len(page.Items) == 0 {
				break
			}
			b := BoundaryOf(page.Items[len(page.Items)-1])
			q.After = &b
		}
	}
	return nil
}
