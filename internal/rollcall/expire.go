package rollcall

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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

// ExpireConcurrency is how many pages of due invitations ExpireDue works on at once.
const ExpireConcurrency = 8

// ExpireDue marks every open invitation whose expiry is at or before now as expired
// (docs/api.md#invitations). It reads the expiry index only (no scan), re-reads each listed item
// consistently and writes with the same version-checked, lease-aware transaction as every
// other single write, so it is idempotent: an item already changed is skipped, and two runs
// never expire one invitation twice. It stops starting new work at deadline and leaves the
// rest for the next run.
func (s *Service) ExpireDue(ctx context.Context, now, deadline time.Time) (ExpireResult, error) {
	start := time.Now()
	var expired, skipped, busy, failed atomic.Int64
	var stopped atomic.Bool
	var errMu sync.Mutex
	var firstErr error
	now = now.UTC()
	ed := Edit{Actor: "system", Source: SourceExpiry, Now: now}

	past := func() bool {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			stopped.Store(true)
			return true
		}
		return ctx.Err() != nil
	}
	sem := make(chan struct{}, ExpireConcurrency)
	err := s.Store.ExpiredInvitations(ctx, now, func(page []*Enrollment) bool {
		if past() {
			return false
		}
		sem <- struct{}{}
		defer func() { <-sem }()
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.ID
		}
		fresh, err := s.Store.GetEnrollments(ctx, ids)
		if err != nil && ctx.Err() != nil {
			stopped.Store(true)
			return false
		}
		if err != nil {
			failed.Add(int64(len(ids)))
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
			return true
		}
		for _, id := range ids {
			if past() {
				return false
			}
			switch r := s.expireOne(ctx, fresh[id], ed); r {
			case expireDone:
				expired.Add(1)
			case expireSkipped:
				skipped.Add(1)
			case expireBusy:
				busy.Add(1)
			case expireStopped:
				stopped.Store(true)
				return false
			default:
				failed.Add(1)
			}
		}
		return true
	})
	res := ExpireResult{Expired: int(expired.Load()), Skipped: int(skipped.Load()), Busy: int(busy.Load()), Failed: int(failed.Load())}
	if ctx.Err() != nil {
		// The invocation's own deadline (or a cancel): what is left waits for the next run.
		stopped.Store(true)
	}
	res.Complete = err == nil && firstErr == nil && !stopped.Load() && res.Busy == 0 && res.Failed == 0
	complete := 0.0
	if res.Complete {
		complete = 1
	}
	s.record(ctx, map[string]float64{"InvitationsExpired": float64(res.Expired), "ExpirySkipped": float64(res.Skipped),
		"ExpiryBusy": float64(res.Busy), "ExpiryFailed": float64(res.Failed), "ExpiryComplete": complete})
	level := s.log().InfoContext
	if err != nil || firstErr != nil || res.Failed > 0 {
		level = s.log().WarnContext
	}
	attrs := []any{"expired", res.Expired, "skipped", res.Skipped, "busy", res.Busy, "failed", res.Failed,
		"complete", res.Complete, "stopped_at_deadline", stopped.Load(), "due_before", now, "duration_ms", time.Since(start).Milliseconds()}
	if err == nil {
		err = firstErr
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	level(ctx, "expiry run", attrs...)
	if err != nil && !stopped.Load() {
		return res, unavailable("expire invitations", err)
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
