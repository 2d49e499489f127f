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
	// DueWork calls fn with pages of enrollments (ids only) whose scheduled work (see
	// Enrollment.DueAt) is due at or before before; fn may run on several goroutines at once.
	DueWork(ctx context.Context, before time.Time, fn func(page []*Enrollment) bool) error

	// AuditEntries lists the audit trail of one enrollment, oldest first.
	AuditEntries(ctx context.Context, id string) ([]*AuditEntry, error)
}
