package rollcall

import (
	"context"
	"errors"
	"strings"
	"time"
)

// CreateInvitation is the Redu-style POST /api/courses/{course_id}/enrollments: one
// invitation for email, mailed with its link. It returns the enrollment and its token (the
// only time the token is shown). An open invitation is issued again with a new token; an
// active enrollment is a 409.
func (s *Service) CreateInvitation(ctx context.Context, actor Actor, courseID, email string) (*Enrollment, string, error) {
	course, err := s.courseFor(ctx, actor, courseID)
	if err != nil {
		return nil, "", err
	}
	email = strings.TrimSpace(email)
	switch {
	case email == "":
		return nil, "", FieldError("email", "This field is required.")
	case !ValidEmail(email):
		return nil, "", FieldError("email", "Enter a valid email address.")
	}
	email = NormalizeEmail(email)
	user, err := s.Store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, "", unavailable("create invitation", err)
	}
	if user != nil && user.Retiring {
		return nil, "", FieldError("email", "This account is being retired and can no longer be invited.")
	}
	id := EnrollmentID(courseID, email)
	// A new address counts against a course admin's daily quota (429 before any write).
	if !actor.Staff {
		cur, err := s.Store.GetEnrollment(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, "", unavailable("create invitation", err)
		}
		if cur.Effective(s.now()) != StateInvited && cur.Effective(s.now()) != StateActive {
			if err := s.reserveInvites(ctx, actor, 1); err != nil {
				return nil, "", err
			}
		}
	}
	next, err := s.saveWithRetry(ctx, id, func(cur *Enrollment) (*Enrollment, error) {
		if cur.Effective(s.now()) == StateActive {
			return nil, &ConflictError{Detail: "This email is already enrolled in the course."}
		}
		next := cloneOrNew(cur, courseID, email, s.now())
		if user != nil {
			next.Username = user.Username
		}
		from := UnenrolledToAllowed
		if cur.Effective(s.now()) == StateInvited {
			from = AllowedToAllowed
		}
		ed := Edit{Actor: actor.Username, Source: SourceAPI, Now: s.now(), Course: course, AutoEnroll: cur != nil && cur.AutoEnroll}
		next.invite(ed)
		next.record(ed, from, MailInvited)
		return next, nil
	})
	if err != nil {
		return nil, "", err
	}
	s.logSkippedMail(ctx, []*Enrollment{next})
	return next, s.InvitationToken(next), nil
}

// DeleteEnrollment is DELETE /api/enrollments/{id} (a public id): an active enrollment is
// unenrolled, an open invitation revoked; anything else is left as it is. Whoever may not
// manage its course gets ErrNotFound, as for an enrollment that does not exist.
func (s *Service) DeleteEnrollment(ctx context.Context, actor Actor, publicID string) (*Enrollment, error) {
	e, _, err := s.managedEnrollment(ctx, actor, publicID, "delete enrollment")
	if err != nil {
		return nil, err
	}
	next, err := s.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		next, ok := Unenroll(cur, Edit{Actor: actor.Username, Source: SourceAPI, Now: s.now()})
		if !ok {
			return cur, nil
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// saveWithRetry re-reads and re-applies edit until the write lands, the edit declines
// (returns nil), or the course stays busy past LeaseWait.
func (s *Service) saveWithRetry(ctx context.Context, id string, edit func(cur *Enrollment) (*Enrollment, error)) (*Enrollment, error) {
	deadline := time.Now().Add(s.leaseWait(ctx))
	pause := 10 * time.Millisecond
	for {
		cur, err := s.Store.GetEnrollment(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, unavailable("read enrollment", err)
		}
		if errors.Is(err, ErrNotFound) {
			cur = nil
		}
		next, err := edit(cur)
		if err != nil || next == nil || next == cur {
			return next, err
		}
		s.sealInvitation(next)
		var prev int64
		if cur != nil {
			prev = cur.Version
		}
		err = s.Store.SaveEnrollment(ctx, next, prev)
		if err == nil {
			return next, nil
		}
		if err := s.awaitRetry(ctx, err, deadline, &pause); err != nil {
			return nil, unavailable("save enrollment", err)
		}
	}
}

// lookupEnrollment reads the enrollment a public id names; an id that names none, or is not
// one of ours, is ErrNotFound. what names the use case in an outage's error.
func (s *Service) lookupEnrollment(ctx context.Context, publicID, what string) (*Enrollment, error) {
	id, err := s.storeID(publicID)
	if err != nil {
		return nil, err
	}
	e, err := s.Store.GetEnrollment(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable(what, err)
	}
	return e, nil
}

// managedEnrollment reads the enrollment a public id names and its course, for an actor who
// may manage that course (staff or a course admin). To anyone else the enrollment does not
// exist (ErrNotFound), so that ids cannot be probed.
func (s *Service) managedEnrollment(ctx context.Context, actor Actor, publicID, what string) (*Enrollment, *Course, error) {
	e, err := s.lookupEnrollment(ctx, publicID, what)
	if err != nil {
		return nil, nil, err
	}
	course, err := s.courseFor(ctx, actor, e.CourseID)
	if errors.Is(err, ErrForbidden) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	return e, course, nil
}
