package rollcall

import (
	"context"
	"time"
)

// InvitationStore finds invitations by token and by expiry (docs/api.md#invitations), and keeps the
// audit trail that the stream materializes from enrollment changes.
type InvitationStore interface {
	// FindByTokenHash returns the enrollment whose latest invitation token hashes to tokenHash
	// (TokenHash): an index lookup, then a strongly consistent read of the item, whose
	// token_hash must still match. ErrNotFound if there is none.
	FindByTokenHash(ctx context.Context, tokenHash string) (*Enrollment, error)

	// ExpiredInvitations calls fn with pages of open invitations whose expiry is at or before
	// `before`, oldest first within each partition of the expiry index, until none remain or
	// fn returns false. The pages come from an eventually consistent index (re-read the items
	// before acting on them) and may be delivered from several goroutines at once.
	ExpiredInvitations(ctx context.Context, before time.Time, fn func(page []*Enrollment) bool) error

	// AuditEntries lists the audit trail of one enrollment, oldest first.
	AuditEntries(ctx context.Context, id string) ([]*AuditEntry, error)
}

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
