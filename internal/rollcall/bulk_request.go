package rollcall

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Bulk enroll limits (docs/api.md#bulk-enroll).
const (
	MaxBulkPairs     = 10_000  // identifier x course pairs per request
	MaxBulkBodyBytes = 1 << 20 // 1 MiB
	MaxReasonLen     = 1000
)

// Field is one request field as the body carried it, whatever the encoding: absent, a string,
// a list of strings (JSON array or a repeated form key), or a JSON boolean/number.
type Field struct {
	Present bool
	Values  []string // strings, or the text of numbers
	List    bool     // given as a JSON array
	Bool    *bool    // given as a JSON boolean
	Invalid bool     // given as something else (an object, null inside a list, ...)
}

// Fields are the fields of a bulk enroll body, by name.
type Fields map[string]Field

// BulkRequest is a validated bulk enroll request.
type BulkRequest struct {
	Identifiers   []string // every occurrence, in input order
	Courses       []string // distinct, in input order
	Cohorts       []string // nil unless given; Cohorts[i] goes with Courses[i]
	Action        string   // "enroll" or "unenroll"
	AutoEnroll    bool
	EmailStudents bool
	Reason        string
	Role          string    // "" unless given: then results report each state's role
	Mode          string    // "" unless given
	EndAt         time.Time // zero unless given
	DurationDays  int       // 0 unless given
	// InviteRegistered: registered users get an invitation they accept, instead of being
	// enrolled at once (as for a course with require_acceptance).
	InviteRegistered bool
	// Source is the audit source of its changes: SourceBulk unless a job runs it (SourceJob).
	Source string
}

// source is the audit source of the request's changes.
func (r *BulkRequest) source() string {
	if r.Source == "" {
		return SourceBulk
	}
	return r.Source
}

// EndFor is the end date the request gives enrollments made at now (zero: none given).
func (r *BulkRequest) EndFor(now time.Time) time.Time {
	if !r.EndAt.IsZero() {
		return r.EndAt
	}
	if r.DurationDays > 0 {
		return now.AddDate(0, 0, r.DurationDays).UTC().Truncate(time.Second)
	}
	return time.Time{}
}

// Pairs is the identifier x course count the request limit applies to.
func (r *BulkRequest) Pairs() int { return len(r.Identifiers) * len(r.Courses) }

// CohortFor returns the cohort given for the i-th course, or "".
func (r *BulkRequest) CohortFor(i int) string {
	if r.Cohorts == nil {
		return ""
	}
	return r.Cohorts[i]
}

// ParseBulkCourses extracts the course keys of a bulk body, for the permission check that must
// come before full validation (a non-staff caller learns nothing from validation errors).
// ok is false when the field is missing or holds an invalid key.
func ParseBulkCourses(f Fields) (courses []string, ok bool) {
	c, ok := f["courses"]
	if !ok || !c.Present || c.Invalid || c.Bool != nil {
		return nil, false
	}
	courses = dedupe(splitField(c, SplitCommaList))
	if len(courses) == 0 {
		return nil, false
	}
	for _, k := range courses {
		if !ValidCourseKey(k) {
			return nil, false
		}
	}
	return courses, true
}

// ParseBulkRequest validates a bulk body with the messages of Open edX's
// BulkEnrollmentSerializer (Django REST Framework): every field error at once, then the
// cross-field rules.
func ParseBulkRequest(f Fields) (*BulkRequest, error) {
	v := &ValidationError{}
	r := &BulkRequest{}

	// identifiers: required, emails and/or usernames separated by commas, whitespace or newlines.
	if id, ok := f["identifiers"]; !ok || !id.Present {
		v.Add("identifiers", "This field is required.")
	} else if id.Invalid || id.Bool != nil {
		v.Add("identifiers", "Not a valid string.")
	} else if r.Identifiers = splitField(id, SplitList); len(r.Identifiers) == 0 {
		v.Add("identifiers", "This field may not be blank.")
	}

	// courses: required, comma-separated or a list, each a valid course key.
	if c, ok := f["courses"]; !ok || !c.Present {
		v.Add("courses", "This field is required.")
	} else if c.Invalid || c.Bool != nil {
		v.Add("courses", "Expected a list of items but got type \"bool\".")
	} else if r.Courses = dedupe(splitField(c, SplitCommaList)); len(r.Courses) == 0 {
		v.Add("courses", "This list may not be empty.")
	} else {
		for _, k := range r.Courses {
			if !ValidCourseKey(k) {
				v.Add("courses", "Course key not valid: "+k)
				break
			}
		}
	}

	// action: required choice, one value (a list, or a repeated form field, is not one).
	if a, ok := f["action"]; !ok || !a.Present {
		v.Add("action", "This field is required.")
	} else if a.multiple() {
		v.Add("action", "Expected a single value, not a list.")
	} else {
		s := single(a)
		switch s {
		case "enroll", "unenroll":
			r.Action = s
		case "":
			v.Add("action", "This field may not be blank.")
		default:
			v.Add("action", fmt.Sprintf("%q is not a valid choice.", s))
		}
	}

	for _, name := range []string{"auto_enroll", "email_students", "invite_registered"} {
		if fd := f[name]; fd.Present && fd.multiple() {
			v.Add(name, "Expected a single value, not a list.")
		}
	}
	var valid bool
	if r.AutoEnroll, valid = parseBool(f["auto_enroll"]); !valid {
		v.Add("auto_enroll", msgInvalidBoolean)
	}
	if r.EmailStudents, valid = parseBool(f["email_students"]); !valid {
		v.Add("email_students", msgInvalidBoolean)
	}
	if r.InviteRegistered, valid = parseBool(f["invite_registered"]); !valid {
		v.Add("invite_registered", msgInvalidBoolean)
	}

	if c, ok := f["cohorts"]; ok && c.Present {
		if c.Invalid || c.Bool != nil {
			v.Add("cohorts", "Expected a list of items.")
		} else if cs := splitField(c, SplitCommaList); len(cs) > 0 {
			r.Cohorts = cs
			for _, x := range cs {
				if HasControl(x) {
					v.Add("cohorts", "Cohort names may not contain control characters.")
					break
				}
			}
		}
	}

	r.Role = parseChoice(f, "role", ValidRole, v)
	r.Mode = parseChoice(f, "mode", ValidMode, v)
	parseEnd(f, r, v)

	if rs, ok := f["reason"]; ok && rs.Present {
		r.Reason = strings.TrimSpace(strings.Join(rs.Values, " "))
		switch {
		case rs.multiple():
			v.Add("reason", "Expected a single value, not a list.")
		case HasControl(r.Reason):
			v.Add("reason", "This field may not contain control characters.")
		case len(r.Reason) > MaxReasonLen:
			v.Add("reason", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxReasonLen))
		}
	}

	if err := v.OrNil(); err != nil {
		return nil, err
	}

	// Cross-field rules, in the serializer's order.
	if err := checkLifecycleOptions(r); err != nil {
		return nil, err
	}
	if r.Cohorts != nil {
		if r.Action != "enroll" {
			return nil, NonFieldError("Cohorts can only be used for enrollments.")
		}
		raw := splitField(f["courses"], SplitCommaList)
		if len(r.Cohorts) != len(raw) {
			return nil, NonFieldError("If provided, the cohorts and courses should have equal number of items.")
		}
		// Pair cohorts with the distinct courses: the first occurrence of a course wins.
		seen := map[string]bool{}
		var cohorts []string
		for i, c := range raw {
			if !seen[c] {
				seen[c] = true
				cohorts = append(cohorts, r.Cohorts[i])
			}
		}
		r.Cohorts = cohorts
	}
	return r, nil
}

// parseChoice reads an optional single-valued choice ("" when absent or blank).
func parseChoice(f Fields, name string, valid func(string) bool, v *ValidationError) string {
	fd, ok := f[name]
	if !ok || !fd.Present {
		return ""
	}
	if fd.multiple() || fd.Invalid || fd.Bool != nil {
		v.Add(name, "Expected a single value, not a list.")
		return ""
	}
	s := single(fd)
	if s != "" && !valid(s) {
		v.Add(name, fmt.Sprintf("%q is not a valid choice.", s))
		return ""
	}
	return s
}

// splitField flattens a field into items: each string (or list element) split by split.
func splitField(f Field, split func(string) []string) []string {
	var out []string
	for _, s := range f.Values {
		out = append(out, split(s)...)
	}
	return out
}

// multiple reports a field given as a list or more than once where one value is expected.
func (f Field) multiple() bool { return f.List || len(f.Values) > 1 }

// HasControl reports control characters (C0, DEL, C1, and the Unicode line and paragraph
// separators): none belongs in a title, cohort or reason, and in a mail subject CR/LF would
// be header injection.
func HasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

func single(f Field) string {
	if f.Bool != nil {
		return fmt.Sprint(*f.Bool)
	}
	if len(f.Values) == 0 {
		return ""
	}
	return strings.TrimSpace(f.Values[len(f.Values)-1])
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// parseBool accepts JSON booleans and, case-insensitively, true/false, 1/0 and DRF's other
// spellings (t/f, yes/no, y/n, on/off). Absent or empty is false. valid is false for anything
// else, which the caller reports as msgInvalidBoolean.
func parseBool(f Field) (value, valid bool) {
	if !f.Present {
		return false, true
	}
	if f.Bool != nil {
		return *f.Bool, true
	}
	if f.Invalid || f.List {
		return false, false
	}
	switch strings.ToLower(single(f)) {
	case "true", "t", "1", "yes", "y", "on":
		return true, true
	case "false", "f", "0", "no", "n", "off", "":
		return false, true
	}
	return false, false
}

// msgInvalidBoolean is DRF's field message for a value that is not a boolean.
const msgInvalidBoolean = "Must be a valid boolean."

// Snapshot is an Open edX EmailEnrollmentState as bulk enroll reports it before and after.
type Snapshot struct {
	Enrollment bool
	Allowed    bool
	User       bool
	AutoEnroll bool
	Cohort     *string // reported only when the request named cohorts
	Role       *string // reported only when the request named a role
}

// BulkResult is one identifier occurrence's outcome.
type BulkResult struct {
	Identifier        string
	Before, After     Snapshot
	InvalidIdentifier bool
	Error             bool
	WithCohort        bool // the request named cohorts: report "cohort"
	WithRole          bool // the request named a role: report "role"
	// Changed: this occurrence changed its enrollment (a role, mode or end date too, which
	// the states do not show).
	Changed bool
}

// MarshalJSON writes exactly the keys Open edX writes.
func (r BulkResult) MarshalJSON() ([]byte, error) {
	switch {
	case r.InvalidIdentifier:
		return json.Marshal(struct {
			Identifier        string `json:"identifier"`
			InvalidIdentifier bool   `json:"invalidIdentifier"`
		}{r.Identifier, true})
	case r.Error:
		return json.Marshal(struct {
			Identifier string `json:"identifier"`
			Error      bool   `json:"error"`
		}{r.Identifier, true})
	}
	snap := func(s Snapshot) map[string]any {
		m := map[string]any{"enrollment": s.Enrollment, "allowed": s.Allowed, "user": s.User, "auto_enroll": s.AutoEnroll}
		if r.WithCohort {
			m["cohort"] = s.Cohort
		}
		if r.WithRole {
			m["role"] = s.Role
		}
		return m
	}
	return json.Marshal(struct {
		Identifier string         `json:"identifier"`
		Before     map[string]any `json:"before"`
		After      map[string]any `json:"after"`
	}{r.Identifier, snap(r.Before), snap(r.After)})
}

// CourseResults is one course's part of the response.
type CourseResults struct {
	Action     string       `json:"action"`
	AutoEnroll bool         `json:"auto_enroll"`
	Results    []BulkResult `json:"results"`
}

// BulkResponse is the 200 body of bulk enroll.
type BulkResponse struct {
	Action        string                    `json:"action"`
	AutoEnroll    bool                      `json:"auto_enroll"`
	EmailStudents bool                      `json:"email_students"`
	Courses       map[string]*CourseResults `json:"courses"`
}
