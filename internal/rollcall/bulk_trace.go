package rollcall

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// TraceMessage is the message of the Debug line a small bulk request logs when it ends: where
// its time went (see bulkTrace). infra/load tallies these lines into its breakdown.
const TraceMessage = "small bulk request"

// CommitConflict is a commit refused by the store while no lease held its courses: another
// writer touched one of its items at the same time (Code TransactionConflict), or an item it
// read has moved on (Code ConditionalCheckFailed). Step says which kind of item refused it:
// "lease" (a course's lease check), "enrollment", or "" when the store did not say. It is an
// ErrVersionChange: read again and decide again.
type CommitConflict struct{ Code, Step string }

func (e *CommitConflict) Error() string {
	return "commit refused (" + e.Code + " on " + e.stepName() + "): " + ErrVersionChange.Error()
}

func (e *CommitConflict) Is(target error) bool { return target == ErrVersionChange }

func (e *CommitConflict) stepName() string {
	if e.Step == "" {
		return "unknown step"
	}
	return e.Step
}

// bulkTrace tallies one small bulk request: store round trips, commit attempts, why each
// refused attempt was refused, and the time of each phase. It is logged once, at Debug, when
// the request ends (TraceMessage), so that a load run can say where the time goes.
type bulkTrace struct {
	start    time.Time
	calls    int            // store round trips (a batch read or a transaction is one)
	attempts int            // commits sent
	refusals map[string]int // "lease_busy", "<code>:<step>" of a CommitConflict, "other"
	// Phases: resolving identifiers and courses, with the first attempt's read of the
	// before-states; re-reading them for a later attempt; reserving seqs and committing;
	// waiting between attempts; looking invitees up after the write.
	resolve, read, commit, backoff, late time.Duration
}

func newBulkTrace() *bulkTrace { return &bulkTrace{start: time.Now(), refusals: map[string]int{}} }

// refused records why a commit attempt was refused.
func (t *bulkTrace) refused(err error) {
	var busy *CourseBusyError
	var cc *CommitConflict
	switch {
	case errors.As(err, &busy), errors.Is(err, ErrCourseBusy):
		t.refusals["lease_busy"]++
	case errors.As(err, &cc):
		t.refusals[cc.Code+":"+cc.stepName()]++
	case errors.Is(err, ErrVersionChange):
		t.refusals["version_change"]++
	default:
		t.refusals["other"]++
	}
}

// since adds the time since t0 to a phase and returns now, for the next phase.
func since(phase *time.Duration, t0 time.Time) time.Time {
	now := time.Now()
	*phase += now.Sub(t0)
	return now
}

// log writes the trace line; outcome is "ok", "no_change" or the error's text.
func (t *bulkTrace) log(ctx context.Context, l *slog.Logger, outcome string) {
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	attrs := []slog.Attr{
		slog.String("outcome", outcome),
		slog.Float64("total_ms", ms(time.Since(t.start))),
		slog.Int("round_trips", t.calls),
		slog.Int("attempts", t.attempts),
		slog.Float64("resolve_ms", ms(t.resolve)),
		slog.Float64("read_ms", ms(t.read)),
		slog.Float64("commit_ms", ms(t.commit)),
		slog.Float64("backoff_ms", ms(t.backoff)),
		slog.Float64("late_signups_ms", ms(t.late)),
	}
	for k, n := range t.refusals {
		attrs = append(attrs, slog.Int("refused."+k, n))
	}
	l.LogAttrs(ctx, slog.LevelDebug, TraceMessage, attrs...)
}
