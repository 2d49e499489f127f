package auth

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A username that folds onto an ASCII account under Unicode case mapping, or that is not a
// valid username at all, is an invalid token.
func TestUsernameClaimMustBeASCIIUsername(t *testing.T) {
	v := NewHS256(testSecret)
	for _, name := range []string{"al\u0130ce", "\u212Aim", "ali ce", "bob\x00", "", "x" + string(make([]byte, 150))} {
		c := localClaims(time.Hour)
		c["username"] = name
		if name == "" {
			c["preferred_username"] = "al\u0130ce"
		}
		wantErr(t, v, hsToken(t, c), ErrInvalidToken)
	}
	c := localClaims(time.Hour)
	c["username"] = "Kim.O+test@x_-1"
	if _, err := v.Verify(t.Context(), hsToken(t, c)); err != nil {
		t.Fatalf("a valid username: %v", err)
	}
}

// A crit header names extensions the verifier must understand; none is, so it is refused.
func TestCritHeaderRejected(t *testing.T) {
	v := NewHS256(testSecret)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, localClaims(time.Hour))
	tok.Header["crit"] = []string{"exp"}
	s, err := tok.SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, v, s, ErrInvalidToken)
}

// Tokens may live at most the configured lifetime: exp - iat, or exp - now without iat.
func TestLifetimeCap(t *testing.T) {
	v := NewHS256(testSecret)
	now := time.Now()
	long := jwt.MapClaims{"username": "alice", "iat": now.Unix(), "exp": now.Add(25 * time.Hour).Unix()}
	wantErr(t, v, hsToken(t, long), ErrInvalidToken)
	noIat := jwt.MapClaims{"username": "alice", "exp": now.Add(30 * 24 * time.Hour).Unix()}
	wantErr(t, v, hsToken(t, noIat), ErrInvalidToken)
	// Issued long ago, with a long life left: exp - iat counts.
	old := jwt.MapClaims{"username": "alice", "iat": now.Add(-47 * time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()}
	wantErr(t, v, hsToken(t, old), ErrInvalidToken)
	ok := jwt.MapClaims{"username": "alice", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()}
	if _, err := v.Verify(t.Context(), hsToken(t, ok)); err != nil {
		t.Fatalf("a 24 h token: %v", err)
	}
	// A configured cap.
	short := WithMaxLifetime(NewHS256(testSecret), time.Hour)
	wantErr(t, short, hsToken(t, localClaims(2*time.Hour)), ErrInvalidToken)
	if _, err := short.Verify(t.Context(), hsToken(t, localClaims(time.Hour))); err != nil {
		t.Fatalf("within the configured cap: %v", err)
	}
	// IssueLocal never makes a token the verifier refuses.
	s, err := IssueLocal(testSecret, "alice", "a@example.com", false, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), s); err != nil {
		t.Fatalf("IssueLocal with a long ttl: %v", err)
	}
}
