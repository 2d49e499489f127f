package rollcall

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// Public enrollment ids. The store keys an enrollment by EnrollmentID: hashes of its email and
// course, which anyone can compute. The API never shows those: it shows a keyed permutation
// of them (a four-round Feistel network over the id's 24 bytes, each round an HMAC-SHA256
// keyed with the id key), so an id cannot be computed, or tied to an email or to another id
// of the same person, without the key, while the store's layout stays as it is.
//
// Ids handed out before this scheme were the store ids themselves; they are no longer
// accepted (that would let anyone who can hash an email address name its enrollments).

// IDCodec turns store ids into public ids and back.
type IDCodec struct {
	rounds [4][]byte
}

// NewIDCodec derives the codec from the id key (see app's enrollment id key).
func NewIDCodec(key []byte) *IDCodec {
	c := &IDCodec{}
	for i := range c.rounds {
		m := hmac.New(sha256.New, key)
		m.Write([]byte{'e', 'n', 'r', 'o', 'l', 'l', 'm', 'e', 'n', 't', '-', 'i', 'd', byte(i)})
		c.rounds[i] = m.Sum(nil)
	}
	return c
}

const idHalf = 12

func (c *IDCodec) f(i int, half []byte) []byte {
	m := hmac.New(sha256.New, c.rounds[i])
	m.Write(half)
	return m.Sum(nil)[:idHalf]
}

func xorInto(dst, a, b []byte) {
	for i := range dst {
		dst[i] = a[i] ^ b[i]
	}
}

// Public is the public id of a store id ("" for something that is not one).
func (c *IDCodec) Public(storeID string) string {
	b, err := base64.RawURLEncoding.DecodeString(storeID)
	if err != nil || len(b) != 2*idHalf {
		return ""
	}
	l, r := append([]byte(nil), b[:idHalf]...), append([]byte(nil), b[idHalf:]...)
	for i := 0; i < len(c.rounds); i++ {
		next := make([]byte, idHalf)
		xorInto(next, l, c.f(i, r))
		l, r = r, next
	}
	return base64.RawURLEncoding.EncodeToString(append(l, r...))
}

// Store is the store id behind a public id; false for anything that is not a public id.
func (c *IDCodec) Store(publicID string) (string, bool) {
	if !ValidEnrollmentID(publicID) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(publicID)
	if err != nil || len(b) != 2*idHalf {
		return "", false
	}
	l, r := append([]byte(nil), b[:idHalf]...), append([]byte(nil), b[idHalf:]...)
	for i := len(c.rounds) - 1; i >= 0; i-- {
		prev := make([]byte, idHalf)
		xorInto(prev, r, c.f(i, l))
		l, r = prev, l
	}
	id := base64.RawURLEncoding.EncodeToString(append(l, r...))
	// Only canonical encodings: one public id per enrollment.
	if c.Public(id) != publicID {
		return "", false
	}
	return id, true
}
