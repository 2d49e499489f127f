package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// hs256 signs claims by hand, so that the test controls every header and claim.
func hs256(t *testing.T, secret string, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	if header["alg"] == "none" {
		return signing + "."
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Bad tokens are 401 "Invalid Token." on every kind of route, and nothing leaks past them.
func TestBadTokensAreRejected(t *testing.T) {
	f := newFixture(t)
	hdr := map[string]any{"alg": "HS256", "typ": "JWT"}
	staff := func(exp any) map[string]any {
		c := map[string]any{"username": "Bob", "administrator": true}
		if exp != nil {
			c["exp"] = exp
		}
		return c
	}
	future := time.Now().Add(time.Hour).Unix()
	cases := map[string]string{
		"alg none":    hs256(t, testJWTSecret, map[string]any{"alg": "none", "typ": "JWT"}, staff(future)),
		"wrong key":   hs256(t, "another-secret", hdr, staff(future)),
		"expired":     hs256(t, testJWTSecret, hdr, staff(time.Now().Add(-time.Hour).Unix())),
		"missing exp": hs256(t, testJWTSecret, hdr, staff(nil)),
		"HS512":       hs256(t, testJWTSecret, map[string]any{"alg": "HS512", "typ": "JWT"}, staff(future)),
		"garbage":     "a.b.c",
	}
	if good := hs256(t, testJWTSecret, hdr, staff(future)); f.do("GET", "/api/users/NotEnrolledStudent", good, nil, "").Status != http.StatusOK {
		t.Fatal("the hand-signed control token should be accepted")
	}
	for name, tok := range cases {
		for _, req := range []struct{ method, path string }{
			{"POST", bulkPaths[0]}, {"GET", "/api/users/NotEnrolledStudent"}, {"PUT", "/api/courses/" + courseKey},
		} {
			r := f.do(req.method, req.path, tok, map[string]any{"title": "x"}, "")
			if r.Status != http.StatusUnauthorized || string(r.Body) != `{"detail":"Invalid Token."}` {
				t.Errorf("%s on %s %s: %d %s", name, req.method, req.path, r.Status, r.Body)
			}
		}
	}
	// A learner may not read another user; a course admin may not enroll into another course.
	mustStatus(t, f.do("GET", "/api/users/EnrolledStudent", token(t, "NotEnrolledStudent", false), nil, ""), http.StatusForbidden)
	r := f.bulkAs(t, bulkPaths[0], token(t, "carol", false), map[string]any{"identifiers": "x@example.com", "action": "enroll", "courses": courseKey}, true)
	mustStatus(t, r, http.StatusForbidden)
	// Permission comes before the body: a learner's malformed body is a 403, not a 400.
	learner := token(t, "learner", false)
	for _, req := range []struct{ method, path string }{{"PUT", "/api/courses/" + courseKey}, {"POST", "/api/users"}} {
		mustStatus(t, f.do(req.method, req.path, learner, "{not json", "application/json"), http.StatusForbidden)
	}
}
