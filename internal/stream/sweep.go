package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// SweepStore is what the sweep reads and writes besides what the mailer does.
type SweepStore interface {
	OwedMail(ctx context.Context, shard int, from string, before time.Time, limit int) (ids, jobs []string, next string, err error)
	OwedMailShards() int
	LeaseMailSweep(ctx context.Context, owner string, ttl time.Duration) (release func(context.Context), ok bool, err error)
}

// Sweeper is the MailSweepFunction: it sends the mail that is still owed after the stream can
// no longer deliver it (a record that exhausted its retries or its age went to the dead-letter
// queue, which holds positions, not mail). It finds that mail in the table (the owed-mail
// index, never a Scan) and sends it through the mailer's own path: the same sender and send
// rate, the same mail-sent markers, so a mail is sent once whoever sends it.
//
// The stream and the sweep never meet on one mail: the sweep only takes mail owed for longer
// than After, which is set beyond the oldest record the stream still delivers plus the
// mailer's run time. Two sweeps never run at once (a lease). A run stops before its deadline;
// whatever it left is still in the index for the next one.
type Sweeper struct {
	Mailer *Mailer
	Store  SweepStore
	// After is how long mail must have been owed before the sweep sends it.
	After time.Duration
	// Page is how many owed enrollments one round reads (default 500).
	Page int
}

// SweepResult is what one run did.
type SweepResult struct {
	MailStats
	// Busy: another sweep held the lease; this one did nothing.
	Busy bool `json:"busy"`
	// Complete: every shard was swept to its end (nothing left that this run could send).
	Complete bool `json:"complete"`
}

// String describes a result for logs and tests.
func (r SweepResult) String() string {
	return fmt.Sprintf("busy=%v complete=%v %s", r.Busy, r.Complete, r.MailStats)
}

// Run sweeps every shard once.
func (s *Sweeper) Run(ctx context.Context) (SweepResult, error) {
	m := s.Mailer
	start := time.Now()
	var res SweepResult
	owner := sweepOwner()
	release, ok, err := s.Store.LeaseMailSweep(ctx, owner, 15*time.Minute)
	if err != nil {
		return res, fmt.Errorf("mail sweep lease: %w", err)
	}
	if !ok {
		m.log().WarnContext(ctx, "mail sweep: another sweep is running; skipped")
		res.Busy = true
		return res, nil
	}
	defer release(context.WithoutCancel(ctx))

	page := s.Page
	if page <= 0 {
		page = 500
	}
	before := m.now().Add(-s.After)
	res.Complete = true
	defer func() {
		level := m.log().InfoContext
		if res.Failed > 0 || !res.Complete {
			level = m.log().WarnContext
		}
		level(ctx, "mail sweep: done", "owed", res.Owed, "already_sent", res.AlreadySent, "stale", res.Stale,
			"sent", res.Sent, "rejected", res.Rejected, "failed", res.Failed, "complete", res.Complete,
			"owed_before", before.Format(time.RFC3339), "duration_ms", time.Since(start).Milliseconds())
		m.emit(ctx, res.Sent, res.Failed, res.Rejected)
	}()

shards:
	for shard := range s.Store.OwedMailShards() {
		from := ""
		for {
			if s.nearDeadline(ctx) {
				res.Complete = false
				m.log().WarnContext(ctx, "mail sweep: stopping before the deadline; the next run resumes", "shard", shard)
				break shards
			}
			ids, jobs, next, err := s.Store.OwedMail(ctx, shard, from, before, page)
			if err != nil {
				return res, err
			}
			if len(ids)+len(jobs) == 0 {
				break
			}
			// Progress when either kind of mail got somewhere: a job mail that fails must not
			// stop the enrollments' mail, nor the other way round.
			var st MailStats
			progress := false
			if len(ids) > 0 && s.round(ctx, ids, before, &st) {
				progress = true
			}
			if len(jobs) > 0 && s.jobRound(ctx, jobs, &st) {
				progress = true
			}
			res.Owed += st.Owed
			res.AlreadySent += st.AlreadySent
			res.Stale += st.Stale
			res.Sent += st.Sent
			res.Rejected += st.Rejected
			res.Failed += st.Failed
			if !progress {
				// Everything it tried failed (SES or the table is down): leave the rest to
				// the next run rather than hammer it.
				res.Complete = false
				break shards
			}
			if next == "" {
				break
			}
			from = next
		}
	}
	return res, nil
}

// round sends the mail of one page of owed enrollments; progress is false when it tried to
// send and nothing went out.
func (s *Sweeper) round(ctx context.Context, ids []string, before time.Time, st *MailStats) (progress bool) {
	m := s.Mailer
	// The index is eventually consistent and keys only: act on the items as they are now.
	cur, err := m.Store.GetEnrollments(ctx, ids)
	if err != nil {
		m.log().ErrorContext(ctx, "mail sweep: reading owed enrollments failed", "error", err.Error())
		st.Failed += len(ids)
		return false
	}
	var owed []owedMail
	var unknown []rollcall.MailRef
	for _, id := range ids {
		e := cur[id]
		if e == nil || e.MailSeq == 0 || e.MailOwedAt.IsZero() || !e.MailOwedAt.Before(before) {
			continue // dealt with since, or owed anew too recently: the stream has it
		}
		ref := rollcall.MailRef{EnrollmentID: id, Seq: e.MailSeq}
		if !knownKind(e.MailKind) {
			m.log().ErrorContext(ctx, "mail sweep: unknown mail kind; dropped", "enrollment_id", id, "mail_kind", e.MailKind)
			unknown = append(unknown, ref)
			continue
		}
		owed = append(owed, owedMail{seq: id, ref: ref, kind: e.MailKind, e: e})
	}
	m.clearOwed(ctx, unknown)
	st.Owed = len(owed)
	if len(owed) == 0 {
		return true
	}
	failed := m.deliver(ctx, owed, cur, st, true)
	return len(failed) < len(owed) || st.Sent+st.Rejected+st.AlreadySent+st.Stale > 0
}

// jobRound sends the job_finished mail of finished jobs the stream gave up on (their final
// write's record), through the mailer's own path (it reads each job, strongly consistent,
// and skips one mailed since); a job that owes nothing more is taken out of the index.
// progress is false when it tried to send and nothing went out.
func (s *Sweeper) jobRound(ctx context.Context, ids []string, st *MailStats) (progress bool) {
	owed := make([]owedJobMail, 0, len(ids))
	for _, id := range ids {
		if rollcall.ValidJobID(id) {
			owed = append(owed, owedJobMail{id: id})
		}
	}
	var js MailStats
	s.Mailer.mailJobs(ctx, owed, &js, true)
	st.Owed += len(owed)
	st.AlreadySent += js.AlreadySent
	st.Sent += js.Sent
	st.Rejected += js.Rejected
	st.Failed += js.Failed
	return js.Failed < len(owed) || len(owed) == 0
}

func (s *Sweeper) nearDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < 2*s.Mailer.margin()
}

func sweepOwner() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "mail-sweep-" + hex.EncodeToString(b)
}
