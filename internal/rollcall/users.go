package rollcall

import (
	"context"
	"errors"
	"strings"
)

// UserInput is the body of POST /api/users.
type UserInput struct {
	Username *string `json:"username"`
	Email    *string `json:"email"`
}

// CreateUser registers an account (staff; the identity system's sign-up hook) and converts the
// email's open invitations (docs/api.md#courses-and-users).
func (s *Service) CreateUser(ctx context.Context, actor Actor, in UserInput) (*User, error) {
	if err := actor.RequireStaff(); err != nil {
		return nil, err
	}
	v := &ValidationError{}
	u := &User{CreatedAt: s.now()}
	switch {
	case in.Username == nil:
		v.Add("username", "This field is required.")
	case !ValidUsername(*in.Username):
		v.Add("username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.")
	default:
		u.Username = *in.Username
	}
	switch {
	case in.Email == nil:
		v.Add("email", "This field is required.")
	case !ValidEmail(strings.TrimSpace(*in.Email)):
		v.Add("email", "Enter a valid email address.")
	default:
		u.Email = NormalizeEmail(*in.Email)
	}
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	if err := s.Register(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Register stores a new user and converts the open invitations of its email. Used by the
// users API and by accepting an invitation without an account.
func (s *Service) Register(ctx context.Context, u *User) error {
	if err := s.Store.CreateUser(ctx, u); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			return err
		}
		return unavailable("create user", err)
	}
	return s.convertInvitations(ctx, u)
}

// convertInvitations applies Register to each open invitation of the user's email.
func (s *Service) convertInvitations(ctx context.Context, u *User) error {
	es, err := s.Store.PersonEnrollments(ctx, u.Email)
	if err != nil {
		return unavailable("list invitations", err)
	}
	for _, e := range es {
		if e.State != StateInvited {
			continue
		}
		if err := s.registerOne(ctx, e.ID, u); err != nil {
			return err
		}
	}
	return nil
}

// GetUser returns a user to staff or to the user.
func (s *Service) GetUser(ctx context.Context, actor Actor, username string) (*User, error) {
	if !ValidUsername(username) {
		return nil, ErrNotFound // no account has such a name; it never reaches the store
	}
	if !actor.Staff && NormalizeUsername(actor.Username) != NormalizeUsername(username) {
		return nil, ErrForbidden
	}
	u, err := s.Store.GetUser(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get user", err)
	}
	return u, nil
}
