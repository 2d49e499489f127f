package rollcall

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Tokens: an invitation token is 256 bits, base64url (43 characters). It is derived as
// HMAC-SHA256(secret, "invitation:" + id + ":" + nonce) with a fresh 128-bit random nonce, so
// it is unpredictable without the secret, and the mailer (which has the secret) can put it in
// the mail although only its SHA-256 is stored.

// NewTokenNonce returns a fresh random nonce.
func NewTokenNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// InvitationToken derives the token of an invitation.
func InvitationToken(secret []byte, id, nonce string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("invitation:" + id + ":" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TokenHash is what is stored and looked up for a token.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidTokenShape reports whether s could be a token (43 base64url characters); anything else
// is answered 404 without a lookup.
func ValidTokenShape(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
