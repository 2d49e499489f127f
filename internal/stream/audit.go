package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// AuditStore writes audit entries; failed is keyed by index into entries.
type AuditStore interface {
	WriteAuditEntries(ctx context.Context, entries []*rollcall.AuditEntry) (failed map[int]error, err error)
}

// Auditor is the AuditFunction: one audit entry for every enrollment change (docs/api.md#bulk-enroll),
// from the change the item carries (chg_by, chg_at, chg_reason, chg_tr, chg_src) and the states
// on both sides of the write. Entries are keyed by (enrollment, time, version), so a
// re-delivered record rewrites its own entry. Records whose entry could not be written are
// reported as batch item failures.
type Auditor struct {
	Store AuditStore
	Log   *slog.Logger
	// Items decodes the stream's images (dynamo.Images).
	Items Items
}

func (a *Auditor) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// Handle is the Lambda handler.
func (a *Auditor) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	start := time.Now()
	changes, bad := Changes(ev, a.Items)
	for seq, err := range bad {
		a.log().ErrorContext(ctx, "audit: undecodable record skipped", "sequence_number", seq, "error", err.Error())
	}
	var entries []*rollcall.AuditEntry
	var seqs []string
	for _, c := range changes {
		for _, e := range rollcall.AuditEntriesOf(c.Old, c.New) {
			entries = append(entries, e)
			seqs = append(seqs, c.Seq)
		}
	}
	failed := a.syncRoleAdmins(ctx, changes)
	if len(entries) == 0 {
		return failures(ev, failed), nil
	}
	failedIdx, err := a.Store.WriteAuditEntries(ctx, entries)
	for i, ferr := range failedIdx {
		failed[seqs[i]] = true
		if err == nil {
			a.log().WarnContext(ctx, "audit: entry not written; retried", "enrollment_id", entries[i].EnrollmentID, "error", ferr.Error())
		}
	}
	if err != nil {
		a.log().ErrorContext(ctx, "audit: entries not written; retried", "entries", len(entries), "error", err.Error())
	}
	a.log().InfoContext(ctx, "audit: batch done", "records", len(ev.Records), "entries", len(entries),
		"failed", len(failed), "duration_ms", time.Since(start).Milliseconds())
	return failures(ev, failed), nil
}
