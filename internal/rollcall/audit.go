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
	}
}
