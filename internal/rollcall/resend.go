package rollcall

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Invitation resend (docs/api.md#enrollment-lifecycle): mail an open invitation again, with the
// link already sent (or a new one), without revoking it.

// ExpiredToAllowed is an expired invitation given a new expiry by a resend.
const ExpiredToAllowed = "from expired to allowed to enroll"

// ResendInterval is how long after a resend the same invitation may be resent again.
const ResendInterval = 24 * time.Hour

// Resend answers that the API fixes.
var (
	ErrInvitationDeclined = &ConflictError{Detail: "This invitation was declined."}
	errNoOpenInvitation   = &ConflictError{Detail: "This enrollment has no open invitation."}
	errAlreadyAccepted    = &ConflictError{Detail: "This invitation was already accepted; it turns active when the invitee signs up."}
)

// ResendOptions are the choices of one resend.
type ResendOptions struct {
	Rotate bool // a new link (the old one dies)
	Extend bool // a new expiry (required for an expired invitation)
}

// resendEdit applies a resend to cur at now, or says why not. Declined comes before every limit.
func resendEdit(cur *Enrollment, course *Course, actor string, o ResendOptions, now time.Time) (*Enrollment, error) {
	if cur == nil {
		return nil, ErrNotFound
	}
	if cur.State == StateDeclined {
		return nil, ErrInvitationDeclined
	}
	eff := cur.Effective(now)
	switch {
	case eff == StateExpired && !o.Extend:
		return nil, &GoneError{Detail: "This invitation has expired; resend it with {\"extend\": true}."}
	case eff == StateInvited && !cur.AcceptedAt.IsZero():
		return nil, errAlreadyAccepted
	case eff != StateInvited && eff != StateExpired:
		return nil, errNoOpenInvitation
	}
	if !cur.ResentAt.IsZero() && now.Sub(cur.ResentAt) < ResendInterval {
		return nil, &QuotaError{Detail: "This invitation was resent less than 24 hours ago.", RetryAfter: cur.ResentAt.Add(ResendInterval).Sub(now)}
	}
	if wait := inviteCapWait(cur, now); wait > 0 {
		return nil, &QuotaError{Detail: fmt.Sprintf("This address got %d invitation mails for this course in the last 24 hours.", MaxInviteMailsPerDay), RetryAfter: wait}
	}
	next := cur.clone()
	ed := Edit{Actor: actor, Source: SourceAPI, Now: now, Course: course}
	from := AllowedToAllowed
	if eff == StateExpired {
		from = ExpiredToAllowed
		next.State = StateInvited
	}
	if o.Rotate || next.TokenNonce == "" {
		next.TokenNonce = NewTokenNonce()
		next.TokenHash = "" // sealed by the service
	}
	if o.Extend {
		next.ExpiresAt = now.Add(course.InvitationTTL()).UTC()
	}
	next.ResentAt = now.UTC()
	next.record(ed, from, MailInvited)
	return next, nil
}

// inviteCapWait is how long until one more invitation mail to this address for this course
// fits the daily cap (0: it fits now).
func inviteCapWait(e *Enrollment, now time.Time) time.Duration {
	var recent []time.Time
	for _, at := range e.InviteMails {
		if now.Sub(at) < 24*time.Hour {
			recent = append(recent, at)
		}
	}
	if len(recent) < MaxInviteMailsPerDay {
		return 0
	}
	oldest := recent[0]
	for _, at := range recent {
		if at.Before(oldest) {
			oldest = at
		}
	}
	return oldest.Add(24 * time.Hour).Sub(now)
}

// ResendInvitation is POST /api/enrollments/{id}/resend (staff or a course admin; anyone else
// gets ErrNotFound).
func (s *Service) ResendInvitation(ctx context.Context, actor Actor, publicID string, o ResendOptions) (*Enrollment, error) {
	e, course, err := s.managedEnrollment(ctx, actor, publicID, "resend invitation")
	if err != nil {
		return nil, err
	}
	return s.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
		return resendEdit(cur, course, actor.Username, o, s.now())
	})
}

// MaxResendHours bounds not_sent_since_hours.
const MaxResendHours = 24 * 365

// ResendCourseInvitations is POST /api/courses/{course_id}/invitations/resend: every open
// invitation of the course whose last invitation mail is at least notSentSince old (or that
// never got one) is mailed again with its link; those the per-invitation rules refuse (resent in
// the last 24 hours, the daily cap, accepted pending sign-up) are left out. It returns how many
// mails it queued (the mailer sends them from the table's stream).
func (s *Service) ResendCourseInvitations(ctx context.Context, actor Actor, courseID string, notSentSince time.Duration) (int, error) {
	course, err := s.courseFor(ctx, actor, courseID)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var queued atomic.Int64
	var firstErr error
	var mu sync.Mutex
	sem := make(chan struct{}, SweepConcurrency)
	var wg sync.WaitGroup
	q := PageQuery{Limit: MaxPageSize, Filter: ListFilter{State: StateInvited, Now: now}}
	for {
		page, err := s.Store.CourseEnrollmentsPage(ctx, courseID, q)
		if err != nil {
			wg.Wait()
			return int(queued.Load()), unavailable("resend invitations", err)
		}
		for _, e := range page.Items {
			wg.Add(1)
			sem <- struct{}{}
			go func(id string) {
				defer func() { <-sem; wg.Done() }()
				next, err := s.saveWithRetry(ctx, id, func(cur *Enrollment) (*Enrollment, error) {
					if cur == nil || !cur.LastSentAt.IsZero() && now.Sub(cur.LastSentAt) < notSentSince {
						return nil, nil
					}
					next, err := resendEdit(cur, course, actor.Username, ResendOptions{}, now)
					if err != nil {
						return nil, nil // refused for this one: left out
					}
					return next, nil
				})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if next != nil {
					queued.Add(1)
				}
			}(e.ID)
		}
		if !page.More || len(page.Items) == 0 {
			break
		}
		b := BoundaryOf(page.Items[len(page.Items)-1])
		q.After = &b
	}
	wg.Wait()
	if firstErr != nil {
		return int(queued.Load()), firstErr
	}
	return int(queued.Load()), nil
}
