package rollcall

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Roles of an enrollment. Active ta and instructor enrollments make their user an admin of the
// course; only staff may grant them.
const (
	RoleStudent    = "student"
	RoleTA         = "ta"
	RoleInstructor = "instructor"
	RoleObserver   = "observer"
)

// Roles lists the valid roles.
var Roles = []string{RoleStudent, RoleTA, RoleInstructor, RoleObserver}

// Modes lists the enrollment modes a course may offer (Open edX's course modes).
var Modes = []string{"audit", "honor", "verified", "professional", "no-id-professional", "credit", "masters", "executive-education"}

// ValidRole and ValidMode report whether s names a role or a mode.
func ValidRole(s string) bool { return slices.Contains(Roles, s) }
func ValidMode(s string) bool { return slices.Contains(Modes, s) }

// AdminRole reports whether an active enrollment with this role administers its course.
func AdminRole(role string) bool { return role == RoleTA || role == RoleInstructor }

// GivesAdmin reports whether e makes its user an admin of its course.
func (e *Enrollment) GivesAdmin() bool {
	return e != nil && e.State == StateActive && e.Username != "" && AdminRole(e.Role)
}

// MaxEndAtYears bounds how far in the future an end date may lie.
const MaxEndAtYears = 10

// checkLifecycleOptions applies the cross-field rules of a request's role, mode and end date
// (bulk enroll's and a job's): they go with enroll only, and an end is given one way.
func checkLifecycleOptions(r *BulkRequest) error {
	if (r.Role != "" || r.Mode != "") && r.Action != "enroll" {
		return NonFieldError("Roles and modes can only be used for enrollments.")
	}
	if (!r.EndAt.IsZero() || r.DurationDays > 0) && r.Action != "enroll" {
		return NonFieldError("End dates can only be used for enrollments.")
	}
	if !r.EndAt.IsZero() && r.DurationDays > 0 {
		return NonFieldError("Give end_at or duration_days, not both.")
	}
	return nil
}

// checkRoleAndMode applies a bulk request's role and mode rules: only staff grant the roles
// that administer a course (403), and every course must offer the mode (400).
func checkRoleAndMode(actor Actor, req *BulkRequest, courses map[string]*Course) error {
	if AdminRole(req.Role) && !actor.Staff {
		return ErrForbidden
	}
	if req.Mode != "" {
		for _, id := range req.Courses {
			if !courses[id].OffersMode(req.Mode) {
				return NonFieldError(fmt.Sprintf("Mode %s is not offered in course %s.", req.Mode, id))
			}
		}
	}
	return nil
}

// fieldChange is the label and sides of one field's change ("from audit to verified").
func fieldChange(from, to string) Step {
	f, t := from, to
	if f == "" {
		f = "none"
	}
	if t == "" {
		t = "none"
	}
	return Step{Transition: "from " + f + " to " + t, From: from, To: to}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// recordSteps stamps a write that makes several changes: the first is the item's change, the
// others ride along (each becomes an audit entry of its own).
func (e *Enrollment) recordSteps(ed Edit, steps []Step) {
	e.record(ed, steps[0].Transition, "")
	e.LastChange.From, e.LastChange.To = steps[0].From, steps[0].To
	if len(steps) > 1 {
		e.LastChange.More = append([]Step(nil), steps[1:]...)
	}
}

// EnrollmentPatch is the body of PATCH /api/enrollments/{id}: the fields present change.
type EnrollmentPatch struct {
	Role   *string
	Mode   *string
	Cohort *string // "" clears it
	EndAt  *string // RFC 3339, or "" to clear it
	// ClearCohort and ClearEndAt record an explicit JSON null.
	ClearCohort, ClearEndAt bool
}

// ParseEnrollmentPatch reads a PATCH body: only role, mode, cohort and end_at; anything else
// is a 400 naming the field.
func ParseEnrollmentPatch(body []byte) (*EnrollmentPatch, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, NonFieldError("Invalid data. Expected a dictionary.")
	}
	v := &ValidationError{}
	p := &EnrollmentPatch{}
	str := func(name string, null *bool) *string {
		m, ok := raw[name]
		if !ok {
			return nil
		}
		if string(m) == "null" {
			if null == nil {
				v.Add(name, "This field may not be null.")
				return nil
			}
			*null = true
			s := ""
			return &s
		}
		var s string
		if err := json.Unmarshal(m, &s); err != nil {
			v.Add(name, "Not a valid string.")
			return nil
		}
		return &s
	}
	for k := range raw {
		switch k {
		case "role", "mode", "cohort", "end_at":
		default:
			v.Add(k, "This field cannot be changed.")
		}
	}
	p.Role = str("role", nil)
	p.Mode = str("mode", nil)
	p.Cohort = str("cohort", &p.ClearCohort)
	p.EndAt = str("end_at", &p.ClearEndAt)
	if p.Role != nil && !ValidRole(*p.Role) {
		v.Add("role", fmt.Sprintf("%q is not a valid choice.", *p.Role))
	}
	if p.Mode != nil && !ValidMode(*p.Mode) {
		v.Add("mode", fmt.Sprintf("%q is not a valid choice.", *p.Mode))
	}
	if p.Cohort != nil && (len(*p.Cohort) > 255 || HasControl(*p.Cohort)) {
		v.Add("cohort", "Not a valid cohort name.")
	}
	if p.EndAt != nil && *p.EndAt != "" {
		if t, err := time.Parse(time.RFC3339, *p.EndAt); err != nil || t.Year() < 2000 || t.Year() > 9999 {
			v.Add("end_at", msgDatetimeFormat)
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	return p, nil
}

// PatchEnrollment is PATCH /api/enrollments/{id} (staff or a course admin): it changes the
// role, mode, cohort or end date; each change is an audit entry. Only staff may make someone a
// ta or an instructor. Whoever may not manage the course gets ErrNotFound.
func (s *Service) PatchEnrollment(ctx context.Context, actor Actor, publicID string, p *EnrollmentPatch) (*Enrollment, error) {
	e, course, err := s.managedEnrollment(ctx, actor, publicID, "patch enrollment")
	if err != nil {
		return nil, err
	}
	if p.Role != nil && AdminRole(*p.Role) && !actor.Staff {
		return nil, ErrForbidden
	}
	if p.Mode != nil && !course.OffersMode(*p.Mode) {
		return nil, NonFieldError(fmt.Sprintf("Mode %s is not offered in course %s.", *p.Mode, course.ID))
	}
	if p.Cohort != nil && *p.Cohort != "" && !course.HasCohort(*p.Cohort) {
		return nil, NonFieldError(fmt.Sprintf("cohort %s not found in course %s.", *p.Cohort, course.ID))
	}
	var endAt time.Time
	if p.EndAt != nil && *p.EndAt != "" {
		endAt, _ = time.Parse(time.RFC3339, *p.EndAt)
		endAt = endAt.UTC().Truncate(time.Second)
		if endAt.After(s.now().AddDate(MaxEndAtYears, 0, 0)) {
			return nil, FieldError("end_at", fmt.Sprintf("Ensure the end date is within %d years.", MaxEndAtYears))
		}
	}
	return s.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		// Only an admin who is not the enrollment's own user (or staff) may demote a ta or
		// an instructor: a course admin may not take staff-granted rights away either.
		if p.Role != nil && AdminRole(cur.Role) && *p.Role != cur.Role && !actor.Staff {
			return nil, ErrForbidden
		}
		next := cur.clone()
		var steps []Step
		if p.Role != nil && *p.Role != cur.Role {
			steps = append(steps, fieldChange(cur.Role, *p.Role))
			next.Role = *p.Role
		}
		if p.Mode != nil && *p.Mode != cur.Mode {
			steps = append(steps, fieldChange(cur.Mode, *p.Mode))
			next.Mode = *p.Mode
		}
		if p.Cohort != nil && *p.Cohort != cur.Cohort {
			steps = append(steps, fieldChange(cur.Cohort, *p.Cohort))
			next.Cohort = *p.Cohort
		}
		if p.EndAt != nil && !endAt.Equal(cur.EndAt) {
			steps = append(steps, fieldChange(timeText(cur.EndAt), timeText(endAt)))
			next.setEnd(endAt, course)
		}
		if len(steps) == 0 {
			return cur, nil
		}
		next.recordSteps(Edit{Actor: actor.Username, Source: SourceAPI, Now: s.now()}, steps)
		return next, nil
	})
}

// History sources, as GET /api/enrollments/{id}/history names them.
const (
	HistoryBulk         = "bulk"
	HistoryJob          = "job"
	HistoryAPI          = "api"
	HistoryInvitation   = "invitation"
	HistoryRegistration = "registration"
	HistorySchedule     = "schedule"
	HistoryRetirement   = "retirement"
)

// HistorySource maps the source an audit entry was recorded with onto the history's names.
func HistorySource(src string) string {
	switch src {
	case SourceBulk, HistoryBulk:
		return HistoryBulk
	case SourceExpiry, SourceSchedule:
		return HistorySchedule
	case SourceJob, "bulk_job", "jobs":
		return HistoryJob
	case "retirement", "retire", "user_retirement":
		return HistoryRetirement
	case SourceAPI, SourceInvitation, SourceRegistration:
		return src
	}
	return HistoryAPI
}

// SourceSchedule marks changes made by a scheduled function other than expiry.
const SourceSchedule = "schedule"

// HistoryEntry is one item of an enrollment's history.
type HistoryEntry struct {
	At     time.Time `json:"-"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Source string    `json:"source"`
}

// stateWords are the sides of the state transitions (Open edX's labels).
var stateWords = []string{"allowed to enroll", "unenrolled", "enrolled", "declined", "expired", "completed"}

// TransitionSides splits "from X to Y" into X and Y (the state labels may contain " to ").
func TransitionSides(tr string) (from, to string) {
	rest, ok := strings.CutPrefix(tr, "from ")
	if !ok {
		return "", tr
	}
	for _, w := range stateWords {
		if r, ok := strings.CutPrefix(rest, w+" to "); ok {
			return w, r
		}
	}
	from, to, _ = strings.Cut(rest, " to ")
	return from, to
}

// HistoryOf is the history entry of an audit entry.
func HistoryOf(a *AuditEntry) HistoryEntry {
	from, to := a.From, a.To
	if from == "" && to == "" {
		from, to = TransitionSides(a.Transition)
	}
	return HistoryEntry{At: a.At, Actor: a.By, Reason: a.Reason, From: from, To: to, Source: HistorySource(a.Source)}
}

// AuditPos is where an enrollment's audit trail continues after (a history page's end).
type AuditPos struct {
	At      time.Time
	Version int64
	Index   int
}

// HistoryStore serves an enrollment's audit trail in pages.
type HistoryStore interface {
	// AuditPage lists up to limit audit entries of an enrollment, oldest first, strictly
	// after pos (nil = from the start); more reports whether others follow.
	AuditPage(ctx context.Context, id string, after *AuditPos, limit int) (entries []*AuditEntry, more bool, err error)
}

// HistoryResult is a page of history and the cursor of the next ("" = last page).
type HistoryResult struct {
	Items []HistoryEntry
	Next  string
}

// History is GET /api/enrollments/{id}/history: staff, a course admin or the learner.
func (s *Service) History(ctx context.Context, actor Actor, publicID, pageSizeParam, cursor string) (*HistoryResult, error) {
	e, err := s.GetEnrollment(ctx, actor, publicID)
	if err != nil {
		return nil, err
	}
	v := &ValidationError{}
	pageSize := parsePageSize(pageSizeParam, v)
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	scope := ListScope("history", e.ID)
	var after *AuditPos
	if cursor != "" {
		b, err := s.decodeCursor(scope, cursor)
		if err != nil {
			return nil, err
		}
		after = &AuditPos{At: b.CreatedAt, Version: b.Seq / historyIndexes, Index: int(b.Seq % historyIndexes)}
	}
	entries, more, err := s.Store.AuditPage(ctx, e.ID, after, pageSize)
	if err != nil {
		return nil, unavailable("history", err)
	}
	out := &HistoryResult{Items: make([]HistoryEntry, 0, len(entries))}
	for _, a := range entries {
		out.Items = append(out.Items, HistoryOf(a))
	}
	if more && len(entries) > 0 {
		last := entries[len(entries)-1]
		out.Next = EncodeCursor(CursorKey(s.Keys.Current.Secret), scope,
			Boundary{CreatedAt: last.At, ID: e.ID, Seq: last.Version*historyIndexes + int64(last.Index)})
	}
	return out, nil
}

// historyIndexes bounds the changes one write records (role, mode, cohort, end date, state).
const historyIndexes = 16

// CourseOf is the course of whichever side of a change exists.
func CourseOf(old, new *Enrollment) string {
	if new != nil {
		return new.CourseID
	}
	if old != nil {
		return old.CourseID
	}
	return ""
}
