// Package auth turns a bearer JWT into a rollcall.Actor (docs/api.md#auth-and-errors).
//
// The local stage verifies HS256 tokens signed with a shared secret (IssueLocal makes them);
// deployed stages verify RS256/ES256 tokens against the identity provider's JWKS, with issuer
// and audience checked. Each verifier pins its algorithms: the token's own "alg" header only
// ever selects among them, so "none" and the RS256→HS256 key-confusion trick cannot work.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Verifier checks a bearer token and says who presents it (the domain's port).
type Verifier = rollcall.TokenVerifier

// The errors a Verifier's answers wrap (defined in the domain, so that the HTTP adapter maps
// them without importing this package).
var (
	ErrNoCredentials   = rollcall.ErrNoCredentials
	ErrInvalidToken    = rollcall.ErrInvalidToken
	ErrKeysUnavailable = rollcall.ErrKeysUnavailable
)

const (
	// leeway absorbs clock skew between the issuer and Lambda on exp, nbf and iat.
	leeway = 30 * time.Second
	// maxTokenLen bounds the work done on a hostile token; real ones are a few KiB at most
	// (API Gateway caps headers near 10 KiB anyway).
	maxTokenLen = 16 << 10
	// DefaultMaxLifetime is the longest a token may live (JWT_MAX_LIFETIME unless set): exp
	// minus iat, or exp minus now for a token without iat.
	DefaultMaxLifetime = 24 * time.Hour
)

// lifetimeCapped is a verifier whose lifetime cap can be set.
type lifetimeCapped interface{ setMaxLifetime(time.Duration) }

// WithMaxLifetime sets the longest lifetime v accepts (d <= 0 keeps DefaultMaxLifetime).
func WithMaxLifetime(v Verifier, d time.Duration) Verifier {
	if c, ok := v.(lifetimeCapped); ok && d > 0 {
		c.setMaxLifetime(d)
	}
	return v
}

// FromConfig returns the verifier of a stage: HS256 with hsSecret only on the local stage
// (so a leaked dev secret is worthless elsewhere), JWKS everywhere else.
func FromConfig(stage, hsSecret, jwksURL, issuer, audience string) (Verifier, error) {
	if stage == "local" {
		if hsSecret == "" {
			return nil, errors.New("auth: local stage needs a JWT secret")
		}
		return NewHS256([]byte(hsSecret)), nil
	}
	if jwksURL == "" {
		return nil, fmt.Errorf("auth: stage %q needs JWT_JWKS_URL", stage)
	}
	// Without them any token the IdP signs for any client would do; refuse to start.
	if issuer == "" || audience == "" {
		return nil, fmt.Errorf("auth: stage %q needs JWT_ISSUER and JWT_AUDIENCE", stage)
	}
	return NewJWKS(jwksURL, issuer, audience, nil), nil
}

// IssueLocal signs an HS256 token for the local stage (make token, tests). A ttl longer than
// DefaultMaxLifetime is cut to it: a longer-lived token would be refused.
func IssueLocal(secret []byte, username, email string, admin bool, ttl time.Duration) (string, error) {
	if len(secret) == 0 || username == "" || ttl <= 0 {
		return "", errors.New("auth: IssueLocal needs a secret, a username and a positive ttl")
	}
	ttl = min(ttl, DefaultMaxLifetime)
	now := time.Now()
	claims := jwt.MapClaims{
		"username":      username,
		"email":         email,
		"administrator": admin,
		"iat":           now.Unix(),
		"exp":           now.Add(ttl).Unix(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// verify is what both verifiers share: parse with p (which pins algorithms and the claims
// rules), refuse a crit header (no extension is understood here, so RFC 7515 says reject)
// and a lifetime over maxLifetime, then map the claims.
func verify(p *jwt.Parser, bearer string, key jwt.Keyfunc, now time.Time, maxLifetime time.Duration) (rollcall.Actor, error) {
	if bearer == "" {
		return rollcall.Actor{}, ErrNoCredentials
	}
	if len(bearer) > maxTokenLen {
		return rollcall.Actor{}, fmt.Errorf("%w: token too long", ErrInvalidToken)
	}
	claims := jwt.MapClaims{}
	withoutCrit := func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header")
		}
		return key(t)
	}
	if _, err := p.ParseWithClaims(bearer, claims, withoutCrit); err != nil {
		// A key-fetch outage is surfaced as such, not as a bad token.
		if errors.Is(err, ErrKeysUnavailable) {
			return rollcall.Actor{}, err
		}
		return rollcall.Actor{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if err := checkLifetime(claims, now, maxLifetime); err != nil {
		return rollcall.Actor{}, err
	}
	return actorFromClaims(claims)
}

// checkLifetime refuses a token that lives longer than maxLifetime (0 = DefaultMaxLifetime).
func checkLifetime(c jwt.MapClaims, now time.Time, maxLifetime time.Duration) error {
	if maxLifetime <= 0 {
		maxLifetime = DefaultMaxLifetime
	}
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	from := now
	if iat, err := c.GetIssuedAt(); err == nil && iat != nil {
		from = iat.Time
	}
	if exp.Sub(from) > maxLifetime {
		return fmt.Errorf("%w: lifetime %s exceeds %s", ErrInvalidToken, exp.Sub(from).Round(time.Second), maxLifetime)
	}
	return nil
}

// actorFromClaims maps Open edX style claims. A claim of the wrong type makes the token
// invalid rather than being silently ignored, except administrator, where only true counts.
func actorFromClaims(c jwt.MapClaims) (rollcall.Actor, error) {
	var a rollcall.Actor
	name, err := stringClaim(c, "username")
	if err == nil && name == "" {
		name, err = stringClaim(c, "preferred_username")
	}
	if err != nil {
		return a, err
	}
	if name == "" {
		return a, fmt.Errorf("%w: no username claim", ErrInvalidToken)
	}
	// Only ASCII usernames of the account pattern: anything else could fold onto another
	// account, or reach the store as a key it refuses.
	if !rollcall.ValidUsername(name) {
		return a, fmt.Errorf("%w: username claim is not a valid username", ErrInvalidToken)
	}
	if a.Email, err = stringClaim(c, "email"); err != nil {
		return a, err
	}
	a.Username = name
	switch v := c["administrator"].(type) {
	case bool:
		a.Staff = v
	case string:
		// Some IdP claim mappers emit every custom claim as a string.
		a.Staff = strings.EqualFold(v, "true")
	}
	// The retirement driver's service account (docs/api.md#retirement); as administrator,
	// only true counts.
	switch v := c["retirement_service"].(type) {
	case bool:
		a.RetirementService = v
	case string:
		a.RetirementService = strings.EqualFold(v, "true")
	}
	return a, nil
}

func stringClaim(c jwt.MapClaims, name string) (string, error) {
	v, ok := c[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: claim %s is not a string", ErrInvalidToken, name)
	}
	return s, nil
}
