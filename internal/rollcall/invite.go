package rollcall

import (
	"context"
	"errors"
)

// Invitation is what the invitation page shows about an open invitation.
type Invitation struct {
	Enrollment *Enrollment
	Course     *Course // never nil: a stand-in titled by the course id if the course is gone
	// HasAccount reports whether the invitation's email has an account (the invitation
	// carries a user, or a user with its email exists): accepting makes it active at once.
	// Username is that account's name.
	HasAccount bool
	Username   string
}

// InvitationResult is the outcome of accepting or declining an invitation.
type InvitationResult struct {
	Enrollment *Enrollment
	Course     *Course
	User       *User // the account it was accepted for (nil on decline, or pending sign-up)
	Pending    bool  // accepted pending sign-up: active once the email registers
}

// lookupInvitation finds the enrollment behind a token: 404 for a token of the wrong shape or
// one that no invitation has.
func (s *Service) lookupInvitation(ctx context.Context, token string) (*Enrollment, string, error) {
	if !ValidTokenShape(token) {
		return nil, "", ErrNotFound
	}
	hash := TokenHash(token)
	e, err := s.Store.FindByTokenHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", unavailable("find invitation", err)
	}
	return e, hash, nil
}

// course loads the course of an enrollment for display; a course that is gone is shown by
// its id.
func (s *Service) invitationCourse(ctx context.Context, id string) (*Course, error) {
	c, err := s.Store.GetCourse(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return &Course{ID: id, Title: id}, nil
	}
	if err != nil {
		return nil, unavailable("get course", err)
	}
	return c, nil
}

// Invitation returns what the invitation page of a token shows. Unknown token: ErrNotFound;
// expired: ErrInvitationExpired; used, declined or revoked: ErrInvitationInvalid.
func (s *Service) Invitation(ctx context.Context, token string) (*Invitation, error) {
	e, _, err := s.lookupInvitation(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := answerable(e, s.now()); err != nil {
		return nil, err
	}
	c, err := s.invitationCourse(ctx, e.CourseID)
	if err != nil {
		return nil, err
	}
	inv := &Invitation{Enrollment: e, Course: c, HasAccount: e.Username != "", Username: e.Username}
	if !inv.HasAccount {
		u, err := s.Store.GetUserByEmail(ctx, e.Email)
		switch {
		case err == nil:
			inv.HasAccount, inv.Username = true, u.Username
		case !errors.Is(err, ErrNotFound):
			return nil, unavailable("get user", err)
		}
	}
	return inv, nil
}

// ErrOtherEmail is the 403 of a signed-in accept whose email is not the invitation's.
var ErrOtherEmail = &ForbiddenError{Detail: "This invitation was sent to another email address."}

// AcceptInvitation answers an invitation with yes (docs/api.md#invitations). Accepting never creates an account: those
// belong to the identity provider, which registers them through POST /api/users.
//   - signed in (actor not nil): the token's email must be the invitation's (else
//     ErrOtherEmail); the enrollment becomes active for the token's username.
//   - anonymous: if an account has the invitation's email (or the invitation carries one), the
//     enrollment becomes active for it. Otherwise the invitation is accepted pending sign-up:
//     it stays invited, auto_enroll, with accepted_at set and no expiry, and turns active
//     when that email registers (Open edX's CourseEnrollmentAllowed). Its token is used.
//
// Of two concurrent answers of one token exactly one succeeds; the other gets
// ErrInvitationInvalid. A request that fails changes nothing.
func (s *Service) AcceptInvitation(ctx context.Context, token string, actor *Actor) (*InvitationResult, error) {
	e, hash, err := s.lookupInvitation(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := answerable(e, s.now()); err != nil {
		return nil, err
	}
	var user *User
	switch {
	case actor != nil:
		if actor.Email == "" || NormalizeEmail(actor.Email) != NormalizeEmail(e.Email) {
			return nil, ErrOtherEmail
		}
		user = &User{Username: actor.Username, Email: e.Email}
	case e.Username != "":
		user = &User{Username: e.Username, Email: e.Email}
	default:
		u, err := s.Store.GetUserByEmail(ctx, e.Email)
		switch {
		case err == nil:
			user = u
		case !errors.Is(err, ErrNotFound):
			return nil, unavailable("get user", err)
		}
	}
	next, err := s.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
		if cur == nil || cur.TokenHash != hash {
			return nil, ErrInvitationInvalid
		}
		if user == nil {
			// Registered between our look and this write: Register may have converted it.
			return AcceptPending(cur, Edit{Actor: cur.Email, Source: SourceInvitation, Now: s.now()})
		}
		return Accept(cur, user, Edit{Actor: user.Username, Source: SourceInvitation, Now: s.now()})
	})
	if err != nil {
		return nil, err
	}
	if user == nil {
		// A sign-up that landed between our look-up and our write may have missed this
		// invitation (it was not yet auto-enroll): convert it now if that email has an account.
		if u, err := s.Store.GetUserByEmail(ctx, next.Email); err == nil {
			if err := s.registerOne(ctx, next.ID, u); err != nil {
				return nil, err
			}
			if cur, err := s.Store.GetEnrollment(ctx, next.ID); err == nil {
				next, user = cur, u
			}
		}
	}
	c, err := s.invitationCourse(ctx, next.CourseID)
	if err != nil {
		return nil, err
	}
	s.log().InfoContext(ctx, "invitation accepted", "enrollment_id", next.ID, "course_id", next.CourseID,
		"state", string(next.State), "signed_in", actor != nil)
	return &InvitationResult{Enrollment: next, Course: c, User: user, Pending: next.State == StateInvited}, nil
}

// DeclineInvitation answers an invitation with no: it ends as declined.
func (s *Service) DeclineInvitation(ctx context.Context, token string) (*InvitationResult, error) {
	e, hash, err := s.lookupInvitation(ctx, token)
	if err != nil {
		return nil, err
	}
	next, err := s.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
		if cur == nil || cur.TokenHash != hash {
			return nil, ErrInvitationInvalid
		}
		actor := cur.Username
		if actor == "" {
			actor = cur.Email
		}
		return Decline(cur, Edit{Actor: actor, Source: SourceInvitation, Now: s.now()})
	})
	if err != nil {
		return nil, err
	}
	c, err := s.invitationCourse(ctx, next.CourseID)
	if err != nil {
		return nil, err
	}
	s.log().InfoContext(ctx, "invitation declined", "enrollment_id", next.ID, "course_id", next.CourseID)
	return &InvitationResult{Enrollment: next, Course: c}, nil
}
