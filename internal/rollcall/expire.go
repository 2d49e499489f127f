package rollcall

import (
	"context"
	"errors"
	"time"
)

// ExpireResult counts what one expiry run did.
type ExpireResult struct {
	Expired int `json:"expired"` // invitations this run marked expired
	Skipped int `json:"skipped"` // listed, but already changed (answered, revoked, expired, extended)
	Busy    int `json:"busy"`    // their course was leased by a bulk enrollment: left for the next run
	Failed  int `json:"failed"`  // store errors: left for the next run
	// Complete reports that the run saw every invitation due; false when it stopped at its
	// deadline (or on errors) and left the rest for the next run.
	Complete bool `json:"complete"`
}

// ExpireDue marks every open invitation whose expiry is at or before now as expired
// (docs/api.md#invitations). It reads the expiry index only (no scan), re-reads each listed item
// consistently and writes with the same version-checked, lease-aware transaction as every
// other single write, so it is idempotent: an item already changed is skipped, and two runs
// never expire one invitation twice. It stops starting new work at deadline and leaves the
// rest for the next run.
func (s *Service) ExpireDue(ctx context.Context, now, deadline time.Time) (ExpireResult, error) {
	start := time.Now()
	now = now.UTC()
	ed := Edit{Actor: "system", Source: SourceExpiry, Now: now}
	t := s.sweepPages(ctx, deadline,
		func(fn func([]*Enrollment) bool) error { return s.Store.ExpiredInvitations(ctx, now, fn) },
		func(e *Enrollment) (MailKind, expireOutcome) { return "", s.expireOne(ctx, e, ed) })
	res := ExpireResult{Expired: t.done[""], Skipped: t.skipped, Busy: t.busy, Failed: t.failed, Complete: t.complete()}
	complete := 0.0
	if res.Complete {
		complete = 1
	}
	s.record(ctx, map[string]float64{"InvitationsExpired": float64(res.Expired), "ExpirySkipped": float64(res.Skipped),
		"ExpiryBusy": float64(res.Busy), "ExpiryFailed": float64(res.Failed), "ExpiryComplete": complete})
	level := s.log().InfoContext
	if t.err != nil || res.Failed > 0 {
		level = s.log().WarnContext
	}
	attrs := []any{"expired", res.Expired, "skipped", res.Skipped, "busy", res.Busy, "failed", res.Failed,
		"complete", res.Complete, "stopped_at_deadline", t.stopped, "due_before", now, "duration_ms", time.Since(start).Milliseconds()}
	if t.err != nil {
		attrs = append(attrs, "error", t.err.Error())
	}
	level(ctx, "expiry run", attrs...)
	if t.err != nil && !t.stopped {
		return res, unavailable("expire invitations", t.err)
	}
	return res, nil
}

type expireOutcome int

const (
	expireDone expireOutcome = iota
	expireSkipped
	expireBusy
	expireFailed
	expireStopped
)

// expireOne applies Expire to one item, re-reading and retrying when it changed under us.
func (s *Service) expireOne(ctx context.Context, cur *Enrollment, ed Edit) expireOutcome {
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			if cur == nil {
				return expireSkipped
			}
			e, err := s.Store.GetEnrollment(ctx, cur.ID)
			if errors.Is(err, ErrNotFound) {
				return expireSkipped
			}
			if err != nil && ctx.Err() != nil {
				return expireStopped
			}
			if err != nil {
				s.log().WarnContext(ctx, "expiry: re-read failed", "enrollment_id", cur.ID, "error", err.Error())
				return expireFailed
			}
			cur = e
		}
		next, ok := Expire(cur, ed)
		if !ok {
			return expireSkipped
		}
		err := s.Store.SaveEnrollment(ctx, next, cur.Version)
		switch {
		case err == nil:
			return expireDone
		case errors.Is(err, ErrCourseBusy):
			return expireBusy
		case errors.Is(err, ErrVersionChange):
			continue
		case ctx.Err() != nil:
			return expireStopped
		default:
			s.log().WarnContext(ctx, "expiry: write failed", "enrollment_id", cur.ID, "error", err.Error())
			return expireFailed
		}
	}
	return expireFailed
}
