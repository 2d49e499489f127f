package rollcall

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Key is one version of the signing secret: what signs list cursors and derives invitation
// tokens. ID names the version (deployed: a prefix of its Secrets Manager version id).
type Key struct {
	ID     string
	Secret []byte
}

// KeyRing is the signing secret and the versions it replaced. The current key signs; every key
// verifies, so a rotation keeps the cursors and invitation links made under the previous key
// working until they expire. Deployed, Current is Secrets Manager's AWSCURRENT version and
// Previous its AWSPREVIOUS one (read once per cold start).
type KeyRing struct {
	Current  Key
	Previous []Key
}

// LocalKeyID names a secret that has no version id of its own (the local stage's, from the
// environment): a short digest of it, so that two different secrets never share an id.
func LocalKeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return "l" + hex.EncodeToString(sum[:3])
}

// NewKeyRing is a ring of one key (and optional previous ones) with local ids.
func NewKeyRing(current []byte, previous ...[]byte) KeyRing {
	r := KeyRing{Current: Key{ID: LocalKeyID(current), Secret: current}}
	for _, p := range previous {
		if len(p) > 0 {
			r.Previous = append(r.Previous, Key{ID: LocalKeyID(p), Secret: p})
		}
	}
	return r
}

// All is every key, the current one first.
func (r KeyRing) All() []Key {
	return append([]Key{r.Current}, r.Previous...)
}

// Find is the key with an id.
func (r KeyRing) Find(id string) (Key, bool) {
	for _, k := range r.All() {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// stampNonce prefixes a token nonce with the id of the key its token is derived with, so that
// whoever later derives the token again (the mailer) knows which key to use after a rotation.
func (r KeyRing) stampNonce(nonce string) string {
	if nonce == "" || strings.Contains(nonce, ".") || r.Current.ID == "" {
		return nonce
	}
	return r.Current.ID + "." + nonce
}

// ForNonce is the key a token nonce was stamped with. A nonce without an id (written before
// key ids existed) belongs to the current key.
func (r KeyRing) ForNonce(nonce string) (Key, bool) {
	id, _, ok := strings.Cut(nonce, ".")
	if !ok {
		return r.Current, true
	}
	return r.Find(id)
}

// TokenFor derives the token of an invitation from its nonce; ok is false when the key that
// made it is no longer in the ring (rotated out twice), and the link can no longer be made.
func (r KeyRing) TokenFor(id, nonce string) (token string, ok bool) {
	k, ok := r.ForNonce(nonce)
	if !ok {
		return "", false
	}
	return InvitationToken(k.Secret, id, nonce), true
}
