package rollcall

import "time"

// AuditEntry is one change of an enrollment, as the audit function records it from the
// table's stream (Open edX's ManualEnrollmentAudit plus the states on both sides).
type AuditEntry struct {
	EnrollmentID string    `json:"enrollment_id"`
	CourseID     string    `json:"course_id"`
	Email        string    `json:"email"`
	By           string    `json:"by"`
	At           time.Time `json:"at"`
	Reason       string    `json:"reason,omitempty"`
	Transition   string    `json:"transition"`
	Source       string    `json:"source"`
	StateBefore  State     `json:"state_before"` // "" when the enrollment did not exist
	StateAfter   State     `json:"state_after"`
	Version      int64     `json:"version"`
	// Index numbers the changes of one write (0 for the first; see Change.More).
	Index int `json:"index,omitempty"`
	// From and To are the sides of a field change (mode, role, cohort, end date).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// AuditEntryOf is the entry for the change that turned before (nil = no item) into after, or
// nil if after records no new change (no transition, or a version that did not advance).
func AuditEntryOf(before, after *Enrollment) *AuditEntry {
	if after == nil || after.LastChange == nil || after.LastChange.Transition == "" {
		return nil
	}
	var prevState State
	if before != nil {
		if after.Version <= before.Version {
			return nil
		}
		prevState = before.State
	}
	c := after.LastChange
	return &AuditEntry{
		EnrollmentID: after.ID, CourseID: after.CourseID, Email: after.Email,
		By: c.By, At: c.At, Reason: c.Reason, Transition: c.Transition, Source: c.Source,
		StateBefore: prevState, StateAfter: after.State, Version: after.Version,
		From: c.From, To: c.To,
	}
}

// AuditEntriesOf are the entries of every change the write from before to after made: the
// item's change, then those that rode along with it (a PATCH of several fields).
func AuditEntriesOf(before, after *Enrollment) []*AuditEntry {
	first := AuditEntryOf(before, after)
	if first == nil {
		return nil
	}
	out := []*AuditEntry{first}
	for i, st := range after.LastChange.More {
		if i+1 >= historyIndexes {
			break
		}
		e := *first
		e.Index, e.Transition, e.From, e.To = i+1, st.Transition, st.From, st.To
		out = append(out, &e)
	}
	return out
}
