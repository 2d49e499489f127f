package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// fuzzSecret signs the committed seed testdata/fuzz/FuzzVerifyHS256/valid (iat 1700000000,
// exp a day later: the longest lifetime accepted); fuzzNow is a time when it is live.
var (
	fuzzSecret = []byte("fuzz-secret")
	fuzzNow    = time.Unix(1700003600, 0)
)

// fuzzVerifier verifies as of fuzzNow.
func fuzzVerifier() Verifier {
	v := NewHS256(fuzzSecret).(*hs256Verifier)
	v.now = func() time.Time { return fuzzNow }
	return v
}

// FuzzVerifyHS256: Verify never panics, and whatever it accepts was signed with the secret
// (checked here independently of the jwt library), says HS256, and has a future exp.
func FuzzVerifyHS256(f *testing.F) {
	valid, err := IssueLocal(fuzzSecret, "alice", "alice@example.test", true, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid,
		`eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.` + parts[1] + `.`, // alg none
		parts[0] + "." + parts[1] + ".",                         // signature stripped
		"garbage",
		"",
		"..",
		"...",
	} {
		f.Add(s)
	}
	v := fuzzVerifier()
	f.Fuzz(func(t *testing.T, tok string) {
		a, err := v.Verify(context.Background(), tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNoCredentials) {
				t.Fatalf("error %v is neither ErrInvalidToken nor ErrNoCredentials", err)
			}
			return
		}
		if why := notGenuine(tok, fuzzNow); why != "" {
			t.Fatalf("accepted %q: %s", tok, why)
		}
		if a.Username == "" {
			t.Fatalf("accepted %q with no username", tok)
		}
	})
}

// notGenuine says why tok should have been refused, or "" if it is a genuine live token.
func notGenuine(tok string, now time.Time) string {
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		return "not three segments"
	}
	sig, err := base64.RawURLEncoding.DecodeString(p[2])
	if err != nil {
		return "signature not base64url"
	}
	m := hmac.New(sha256.New, fuzzSecret)
	m.Write([]byte(p[0] + "." + p[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return "not signed with the secret"
	}
	var h struct{ Alg string }
	if b, err := base64.RawURLEncoding.DecodeString(p[0]); err != nil || json.Unmarshal(b, &h) != nil || h.Alg != "HS256" {
		return "header does not say HS256"
	}
	var c struct{ Exp *float64 }
	if b, err := base64.RawURLEncoding.DecodeString(p[1]); err != nil || json.Unmarshal(b, &c) != nil || c.Exp == nil {
		return "no exp"
	}
	if float64(now.Add(-leeway).Unix()) > *c.Exp {
		return "expired"
	}
	return ""
}

// The committed "valid" seed must really be valid, or the fuzzer never explores acceptance.
func TestFuzzSeedValidIsAccepted(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzVerifyHS256/valid")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	wantActor(t, fuzzVerifier(), tok, rollcall.Actor{Username: "alice", Email: "alice@example.test", Staff: true})
}
