package auth

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollcall/rollcall/internal/rollcall"
)

type hs256Verifier struct {
	secret      []byte
	parser      *jwt.Parser
	now         func() time.Time // tests move the clock
	maxLifetime time.Duration
}

func (v *hs256Verifier) setMaxLifetime(d time.Duration) { v.maxLifetime = d }

// NewHS256 returns the local-stage verifier: HS256 only, exp required.
func NewHS256(secret []byte) Verifier {
	v := &hs256Verifier{secret: bytes.Clone(secret), now: time.Now}
	v.parser = jwt.NewParser(
		// Pinning one algorithm is what defeats alg=none, and RS256 tokens "verified" with
		// the secret; HS384/512 are refused too, as nothing here issues them.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // nbf is checked whenever present; iat only with this option
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(), // one encoding per signature: no malleable tokens
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

func (v *hs256Verifier) Verify(_ context.Context, bearer string) (rollcall.Actor, error) {
	return verify(v.parser, bearer, func(t *jwt.Token) (any, error) {
		// Belt and braces on top of WithValidMethods: never hand the secret to another method.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, errors.New("unexpected signing method")
		}
		// An empty HMAC key would let anyone sign; refuse rather than verify against it.
		if len(v.secret) == 0 {
			return nil, errors.New("no secret configured")
		}
		return v.secret, nil
	}, v.now(), v.maxLifetime)
}
