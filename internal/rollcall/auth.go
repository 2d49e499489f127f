package rollcall

import (
	"context"
	"errors"
)

// TokenVerifier checks a bearer token and says who presents it: the port the HTTP adapter
// authenticates through and the JWT adapter (internal/auth) implements.
type TokenVerifier interface {
	// Verify checks bearer, the raw token without its "Bearer " prefix. Errors wrap
	// ErrNoCredentials, ErrInvalidToken or (JWKS only) ErrKeysUnavailable.
	Verify(ctx context.Context, bearer string) (Actor, error)
}

var (
	// ErrNoCredentials: no Authorization header, an empty one, or one of another scheme
	// (as DRF, which lets a "Basic ..." header fall through to "not provided"). → 401
	// "Authentication credentials were not provided."
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalidToken: anything wrong with a presented token. → 401 "Invalid Token."
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrKeysUnavailable: the JWKS could not be fetched, so the token could be neither
	// accepted nor rejected. It does not wrap ErrInvalidToken; it is an outage (→ 503).
	ErrKeysUnavailable = errors.New("auth: signing keys unavailable")
)
