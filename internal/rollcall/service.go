package rollcall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrInviteQuota means a course admin's daily invitation quota would be exceeded.
var ErrInviteQuota = errors.New("daily invitation quota exceeded")

// DefaultAdminDailyInvites is how many new addresses a course admin who is not staff may
// invite a day unless configured (ADMIN_DAILY_INVITES).
const DefaultAdminDailyInvites = 1000

// Service applies the domain's rules through a Store.
type Service struct {
	Store Store
	Now   func() time.Time
	// Keys sign list cursors and derive invitation tokens (see KeyRing).
	Keys KeyRing
	// LeaseTTL bounds how long a crashed bulk request can hold a course; LeaseWait is how long
	// a writer waits for a busy course before answering 503.
	LeaseTTL  time.Duration
	LeaseWait time.Duration
	// Metrics receives counts of what was done (nil: none are kept).
	Metrics Metrics
	// DeadlineMargin is kept free before the invocation's deadline (default 3 s): no wait for
	// a course runs into it.
	DeadlineMargin time.Duration
	// CommitLimit bounds the bulk requests that commit optimistically in one transaction
	// (enrollments read plus courses, see fitsOneCommit); larger ones write in batches under
	// their courses' leases. 0, or anything above SmallRequestItems (what the store promises
	// a commit takes), means SmallRequestItems; 1 sends every bulk write through the leases.
	CommitLimit int
	Log         *slog.Logger
	// IDs turns store ids into the public ids the API shows, and back (see IDCodec). Its key
	// never rotates (ids would change); nil means a codec keyed with the current signing key.
	IDs *IDCodec
	// AdminDailyInvites caps the new addresses a course admin who is not staff may invite a
	// day; 0 means DefaultAdminDailyInvites.
	AdminDailyInvites int
}

// reserveInvites takes n more of actor's daily invitation quota (staff have none): a
// *QuotaError, before any enrollment is written, when it would be exceeded.
func (s *Service) reserveInvites(ctx context.Context, actor Actor, n int) error {
	if actor.Staff || n <= 0 {
		return nil
	}
	limit := s.AdminDailyInvites
	if limit <= 0 {
		limit = DefaultAdminDailyInvites
	}
	now := s.now()
	err := s.Store.ReserveInvites(ctx, NormalizeUsername(actor.Username), now.Format("2006-01-02"), n, limit)
	if errors.Is(err, ErrInviteQuota) {
		midnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
		return &QuotaError{Detail: fmt.Sprintf("Request was throttled. A course admin may invite at most %d new addresses a day; expected available in %d seconds.",
			limit, int(midnight.Sub(now).Seconds())+1), RetryAfter: midnight.Sub(now)}
	}
	if err != nil {
		return unavailable("reserve invitations", err)
	}
	return nil
}

// newInvites counts the writes that invite an address anew (not a re-issue of an open one).
func newInvites(es []*Enrollment) int {
	n := 0
	for _, e := range es {
		if e.State == StateInvited && e.LastChange != nil && e.LastChange.Transition == UnenrolledToAllowed {
			n++
		}
	}
	return n
}

// logSkippedMail logs the invitation mails the per-address daily cap skipped.
func (s *Service) logSkippedMail(ctx context.Context, es []*Enrollment) {
	for _, e := range es {
		if e.MailSkipped {
			s.log().WarnContext(ctx, "invitation mail skipped: daily cap for this address and course reached",
				"enrollment_id", e.ID, "course_id", e.CourseID, "cap", MaxInviteMailsPerDay)
		}
	}
}

func (s *Service) idCodec() *IDCodec {
	if s.IDs == nil {
		return NewIDCodec(s.Keys.Current.Secret)
	}
	return s.IDs
}

// PublicID is the id the API shows for an enrollment.
func (s *Service) PublicID(e *Enrollment) string { return s.idCodec().Public(e.ID) }

// storeID is the store id behind a public id; ErrNotFound for anything else.
func (s *Service) storeID(publicID string) (string, error) {
	id, ok := s.idCodec().Store(publicID)
	if !ok {
		return "", ErrNotFound
	}
	return id, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Clock is the service's current time (injected in tests).
func (s *Service) Clock() time.Time { return s.now() }

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Service) leaseTTL() time.Duration {
	if s.LeaseTTL > 0 {
		return s.LeaseTTL
	}
	return 60 * time.Second
}

// leaseMargin is how long a lease outlives its holder's deadline (the store's rule).
const leaseMargin = 2 * time.Second

// LeaseUntil is the latest time a course lease taken now by a request with ctx can last:
// LeaseTTL, or its deadline (plus a margin for writes in flight) if that comes first. An
// Idempotency-Key reservation outlives it, so a key is free again only once the leases of
// its crashed attempt have lapsed.
func (s *Service) LeaseUntil(ctx context.Context, now time.Time) time.Time {
	until := now.Add(s.leaseTTL())
	if d, ok := ctx.Deadline(); ok && d.Add(leaseMargin).Before(until) {
		until = d.Add(leaseMargin)
	}
	return until
}

// leaseWait is how long a writer may still wait for a busy course: LeaseWait (default 25 s,
// under API Gateway's 30 s), but never past the invocation's deadline less DeadlineMargin, so
// that a request that gives up still has time to write what it did and answer 503 with its
// body, instead of Lambda stopping it and the client getting API Gateway's bare timeout.
func (s *Service) leaseWait(ctx context.Context) time.Duration {
	wait := s.LeaseWait
	if wait <= 0 {
		wait = 25 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		margin := s.DeadlineMargin
		if margin <= 0 {
			margin = 3 * time.Second
		}
		if left := time.Until(dl) - margin; left < wait {
			wait = max(left, 0)
		}
	}
	return wait
}

// unavailable wraps a store failure as the 503 the client sees.
func unavailable(op string, err error) error {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	if errors.Is(err, ErrCourseBusy) {
		return &UnavailableError{Detail: "The course is busy with another bulk enrollment; retry shortly.", Err: err}
	}
	return &UnavailableError{Detail: "The enrollment store is unavailable; retry shortly.", Err: fmt.Errorf("%s: %w", op, err)}
}
