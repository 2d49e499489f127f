package rollcall

import (
	"strings"
	"testing"
	"time"
)

func TestKeyRotationKeepsLinksAndCursors(t *testing.T) {
	k1 := []byte("first-signing-secret-0123456789abcdef")
	k2 := []byte("second-signing-secret-0123456789abcde")
	k3 := []byte("third-signing-secret-0123456789abcdef")
	before := &Service{Keys: NewKeyRing(k1)}

	e := &Enrollment{ID: EnrollmentID("course-v1:A+B+C", "ann@example.com"), State: StateInvited, TokenNonce: NewTokenNonce()}
	before.sealInvitation(e)
	token := before.InvitationToken(e)
	if TokenHash(token) != e.TokenHash {
		t.Fatal("the token does not hash to the stored hash")
	}
	if id, _, ok := strings.Cut(e.TokenNonce, "."); !ok || id != before.Keys.Current.ID {
		t.Fatalf("nonce %q is not stamped with the key id %q", e.TokenNonce, before.Keys.Current.ID)
	}
	scope := ListScope("course", "course-v1:A+B+C")
	cursor := EncodeCursor(CursorKey(k1), scope, Boundary{CreatedAt: time.Unix(1700000000, 0).UTC(), ID: e.ID, Seq: 3})

	// Rotated once: the previous key still makes the same link and verifies the old cursor.
	after := &Service{Keys: NewKeyRing(k2, k1)}
	if got := after.InvitationToken(e); got != token {
		t.Fatalf("after a rotation the link changed: %q, want %q", got, token)
	}
	if _, err := after.decodeCursor(scope, cursor); err != nil {
		t.Fatalf("a cursor made before the rotation no longer verifies: %v", err)
	}
	// New links are made with the new key.
	e2 := &Enrollment{ID: e.ID, State: StateInvited, TokenNonce: NewTokenNonce()}
	after.sealInvitation(e2)
	if id, _, _ := strings.Cut(e2.TokenNonce, "."); id != after.Keys.Current.ID {
		t.Fatalf("a new invitation was stamped %q, want the new key %q", id, after.Keys.Current.ID)
	}

	// Rotated twice: the first key is gone; its links can no longer be made, its cursors fail.
	later := &Service{Keys: NewKeyRing(k3, k2)}
	if _, ok := later.Keys.TokenFor(e.ID, e.TokenNonce); ok {
		t.Fatal("a link was made with a key that is no longer in the ring")
	}
	if _, err := later.decodeCursor(scope, cursor); err == nil {
		t.Fatal("a cursor verified under keys that never signed it")
	}
}

func TestNonceWithoutKeyIDUsesTheCurrentKey(t *testing.T) {
	secret := []byte("legacy-signing-secret-0123456789abcdef")
	ring := NewKeyRing(secret)
	nonce := NewTokenNonce() // as written before key ids existed
	got, ok := ring.TokenFor("id", nonce)
	if !ok || got != InvitationToken(secret, "id", nonce) {
		t.Fatalf("legacy nonce: %q %v", got, ok)
	}
}
