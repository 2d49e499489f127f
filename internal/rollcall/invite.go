package rollcall

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Invitation is what the invitation page shows about an open invitation.
type Invitation struct {
	Enrollment *Enrollment
	Course     *Course // never nil: a stand-in titled by the course id if the course is gone
	// HasAccount reports whether accepting needs no new account: the invitation already
	// carries a user, or a user with its email exists. Username is that account's name.
	HasAccount bool
	Username   string
}

// InvitationResult is the outcome of accepting or declining an invitation.
type InvitationResult struct {
	Enrollment *Enrollment
	Course     *Course
	User       *User // the account it was accepted for (nil on decline)
	Registered bool  // accepting registered that account
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

// AcceptInvitation answers an invitation with yes (docs/api.md#invitations): the enrollment becomes
// active for the invitation's account, the email's account, or, if the email has none, a new
// account named username (or a unique name derived from the email when username is empty).
// A username that is invalid or taken is a 400 on "username". Of two concurrent accepts of one
// token exactly one succeeds; the other gets ErrInvitationInvalid.
func (s *Service) AcceptInvitation(ctx context.Context, token, username string) (*InvitationResult, error) {
	e, hash, err := s.lookupInvitation(ctx, token)
	if err != nil {
		return nil, err
	}
	// A dead token registers nobody.
	if err := answerable(e, s.now()); err != nil {
		return nil, err
	}
	username = strings.TrimSpace(username)
	user, registered, err := s.invitee(ctx, e, username)
	if err != nil {
		return nil, err
	}
	next, err := s.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
		if cur == nil || cur.TokenHash != hash {
			return nil, ErrInvitationInvalid
		}
		// Registering converted an auto-enroll invitation already: that was this accept.
		if registered && cur.State == StateActive && cur.Username == user.Username &&
			cur.LastChange != nil && cur.LastChange.Source == SourceRegistration {
			return cur, nil
		}
		return Accept(cur, user, Edit{Actor: user.Username, Source: SourceInvitation, Now: s.now()})
	})
	if err != nil {
		return nil, err
	}
	c, err := s.invitationCourse(ctx, next.CourseID)
	if err != nil {
		return nil, err
	}
	s.log().InfoContext(ctx, "invitation accepted", "enrollment_id", next.ID, "course_id", next.CourseID,
		"username", user.Username, "registered", registered)
	return &InvitationResult{Enrollment: next, Course: c, User: user, Registered: registered}, nil
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

// invitee is the account an accepted invitation goes to, registering one if the email has
// none. registered reports that this call created it.
func (s *Service) invitee(ctx context.Context, e *Enrollment, username string) (*User, bool, error) {
	if e.Username != "" {
		u, err := s.Store.GetUser(ctx, e.Username)
		switch {
		case err == nil:
			return u, false, nil
		case errors.Is(err, ErrNotFound):
			// The account the invitation names is gone from the store: accept for the name.
			return &User{Username: e.Username, Email: e.Email}, false, nil
		default:
			return nil, false, unavailable("get user", err)
		}
	}
	if u, err := s.Store.GetUserByEmail(ctx, e.Email); err == nil {
		return u, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, unavailable("get user", err)
	}

	if username != "" {
		if !ValidUsername(username) {
			return nil, false, FieldError("username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.")
		}
		u := &User{Username: username, Email: e.Email, CreatedAt: s.now()}
		switch taken, err := s.registerInvitee(ctx, u); {
		case err != nil:
			return nil, false, err
		case taken != nil:
			return taken, false, nil
		case u.Username == "":
			return nil, false, FieldError("username", "A user with that username already exists.")
		}
		return u, true, nil
	}

	base := UsernameBase(e.Email)
	for attempt := 0; attempt < 50; attempt++ {
		name := usernameCandidate(base, attempt)
		// A cheap check first; CreateUser's condition is what decides.
		if _, err := s.Store.GetUser(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return nil, false, unavailable("get user", err)
		}
		u := &User{Username: name, Email: e.Email, CreatedAt: s.now()}
		taken, err := s.registerInvitee(ctx, u)
		switch {
		case err != nil:
			return nil, false, err
		case taken != nil:
			return taken, false, nil
		case u.Username == "":
			continue
		}
		return u, true, nil
	}
	return nil, false, unavailable("register", fmt.Errorf("no free username derived from %q", base))
}

// registerInvitee registers u as Register does (the account, then the email's open
// invitations). If the email turns out to have an account already (registered concurrently),
// that account is returned as taken; if only the username is taken, u.Username is cleared.
func (s *Service) registerInvitee(ctx context.Context, u *User) (taken *User, err error) {
	for attempt := 0; ; attempt++ {
		err := s.Store.CreateUser(ctx, u)
		if err == nil {
			// Ours: convert the email's invitations (auto-enroll ones become active).
			return nil, s.convertInvitations(ctx, u)
		}
		var ce *ConflictError
		conflict := errors.As(err, &ce)
		// Which of the two was taken, or did a concurrent sign-up win? The email's owner tells.
		owner, gerr := s.Store.GetUserByEmail(ctx, u.Email)
		switch {
		case gerr == nil:
			return owner, nil
		case !errors.Is(gerr, ErrNotFound):
			return nil, unavailable("get user", gerr)
		case conflict:
			u.Username = ""
			return nil, nil
		case attempt >= 2:
			return nil, unavailable("create user", err)
		}
		// A transaction conflict with a concurrent sign-up: look again shortly.
		select {
		case <-ctx.Done():
			return nil, unavailable("create user", ctx.Err())
		case <-time.After(time.Duration(25*(attempt+1)+rand.IntN(25)) * time.Millisecond):
		}
	}
}

// MaxDerivedUsernameBase bounds the part of a derived username taken from the email.
const MaxDerivedUsernameBase = 30

// UsernameBase is the start of a username derived from an email: its local part with every
// character outside [A-Za-z0-9_.+-] dropped, at most MaxDerivedUsernameBase long; "learner"
// if nothing is left.
func UsernameBase(email string) string {
	local := email
	if at := strings.LastIndexByte(email, '@'); at >= 0 {
		local = email[:at]
	}
	var b strings.Builder
	for _, r := range local {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '+' || r == '-' {
			b.WriteRune(r)
			if b.Len() == MaxDerivedUsernameBase {
				break
			}
		}
	}
	if b.Len() == 0 {
		return "learner"
	}
	return b.String()
}

// usernameCandidate is the attempt-th name tried for base: base itself, then base2..base9,
// then base with ever longer random digits.
func usernameCandidate(base string, attempt int) string {
	switch {
	case attempt == 0:
		return base
	case attempt < 9:
		return base + strconv.Itoa(attempt+1)
	}
	digits := 3 + (attempt-9)/10
	lo := 1
	for range digits - 1 {
		lo *= 10
	}
	return base + strconv.Itoa(lo+rand.IntN(9*lo))
}
