package rollcall

import (
	"sort"
	"time"
)

type bulkPlan struct {
	req        *BulkRequest
	courses    map[string]*Course
	users      map[string]*User
	actor      Actor
	now        time.Time
	results    map[string][]BulkResult // by course
	changed    map[string]*Enrollment  // by enrollment id
	resultIDs  map[string][]string     // by course: the enrollment id of each result ("" = none)
	lockedOnly map[string]bool         // when set, only these courses may change
}

func newBulkPlan(req *BulkRequest, courses map[string]*Course, users map[string]*User, actor Actor, now time.Time) *bulkPlan {
	return &bulkPlan{req: req, courses: courses, users: users, actor: actor, now: now,
		results: map[string][]BulkResult{}, changed: map[string]*Enrollment{}, resultIDs: map[string][]string{}}
}

// person resolves an identifier to (email, user); ok is false for an invalid identifier.
func (p *bulkPlan) person(identifier string) (email string, user *User, ok bool) {
	if u := p.users[identifier]; u != nil {
		if u.Retiring { // an account being retired can no longer be enrolled or invited
			return "", nil, false
		}
		return u.Email, u, true
	}
	if ValidEmail(identifier) {
		return NormalizeEmail(identifier), nil, true
	}
	return "", nil, false
}

// ids lists the enrollment ids the request touches in the given courses.
func (p *bulkPlan) ids(courses []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range courses {
		for _, ident := range p.req.Identifiers {
			if email, _, ok := p.person(ident); ok {
				id := EnrollmentID(c, email)
				if !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
	}
	return out
}

func (p *bulkPlan) run(before map[string]*Enrollment) {
	withCohort, withRole := p.req.Cohorts != nil, p.req.Role != ""
	for i, courseID := range p.req.Courses {
		state := map[string]*Enrollment{}
		done := map[string]bool{}
		results := make([]BulkResult, 0, len(p.req.Identifiers))
		ids := make([]string, 0, len(p.req.Identifiers))
		for _, ident := range p.req.Identifiers {
			email, user, ok := p.person(ident)
			if !ok {
				results = append(results, BulkResult{Identifier: ident, InvalidIdentifier: true})
				ids = append(ids, "")
				continue
			}
			id := EnrollmentID(courseID, email)
			cur, seen := state[id]
			if !seen {
				cur = before[id]
			}
			snap := SnapshotOf(cur, user != nil, p.now)
			res := BulkResult{Identifier: ident, Before: snap, After: snap, WithCohort: withCohort, WithRole: withRole}
			if !done[id] {
				done[id] = true
				ed := Edit{Actor: p.actor.Username, Reason: p.req.Reason, Source: p.req.source(), Now: p.now,
					EmailOwed: p.req.EmailStudents, AutoEnroll: p.req.AutoEnroll, Course: p.courses[courseID],
					Role: p.req.Role, Mode: p.req.Mode, EndAt: p.req.EndFor(p.now),
					InviteRegistered: p.req.InviteRegistered || p.courses[courseID] != nil && p.courses[courseID].RequireAcceptance}
				if c := p.req.CohortFor(i); c != "" {
					ed.Cohort, ed.SetCohort = c, true
				}
				var next *Enrollment
				var changed bool
				if p.req.Action == "enroll" {
					next, changed = Enroll(cur, courseID, email, user, ed)
				} else {
					next, changed = Unenroll(cur, ed)
				}
				if changed && (p.lockedOnly == nil || p.lockedOnly[courseID]) {
					state[id] = next
					p.changed[id] = next
					res.After = SnapshotOf(next, user != nil, p.now)
					res.Changed = true
				}
			}
			results = append(results, res)
			ids = append(ids, id)
		}
		p.results[courseID] = results
		p.resultIDs[courseID] = ids
	}
}

// changedCourses lists, sorted, the courses with at least one change.
func (p *bulkPlan) changedCourses() []string {
	set := map[string]bool{}
	for _, e := range p.changed {
		set[e.CourseID] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func (p *bulkPlan) writes() []*Enrollment {
	out := make([]*Enrollment, 0, len(p.changed))
	for _, e := range p.changed {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// markFailed reports the occurrences whose write failed as {"identifier", "error": true}.
func (p *bulkPlan) markFailed(failed map[string]error) {
	if len(failed) == 0 {
		return
	}
	for course, ids := range p.resultIDs {
		for i, id := range ids {
			if id != "" && failed[id] != nil {
				r := &p.results[course][i]
				*r = BulkResult{Identifier: r.Identifier, Error: true}
			}
		}
	}
}

func (p *bulkPlan) response() *BulkResponse {
	out := &BulkResponse{Action: p.req.Action, AutoEnroll: p.req.AutoEnroll, EmailStudents: p.req.EmailStudents,
		Courses: make(map[string]*CourseResults, len(p.req.Courses))}
	for _, c := range p.req.Courses {
		out.Courses[c] = &CourseResults{Action: p.req.Action, AutoEnroll: p.req.AutoEnroll, Results: p.results[c]}
	}
	return out
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
