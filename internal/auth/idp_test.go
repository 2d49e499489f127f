package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://idp.example.test"
	testAudience = "rollcall-api"
	rsaKid       = "rsa-1"
	ecKid        = "ec-1"
)

// Key generation is the slow part (RSA especially); one pair serves every test.
var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return rk, ek
})

// testIdP serves a JWKS over httptest holding an RSA key (rsaKid) and a P-256 key (ecKid),
// and lets tests rotate keys, make the endpoint fail, and count fetches.
type testIdP struct {
	URL string
	RSA *rsa.PrivateKey
	EC  *ecdsa.PrivateKey

	mu   sync.Mutex
	keys []map[string]string
	body string // if set, served instead of the key set
	fail bool
	hits int
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	rk, ek := testKeys()
	p := &testIdP{RSA: rk, EC: ek}
	p.keys = []map[string]string{rsaJWK(rsaKid, &rk.PublicKey), ecJWK(ecKid, &ek.PublicKey)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.hits++
		switch {
		case p.fail:
			http.Error(w, "down", http.StatusInternalServerError)
		case p.body != "":
			w.Write([]byte(p.body))
		default:
			json.NewEncoder(w).Encode(map[string]any{"keys": p.keys})
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// verifier returns a JWKS verifier on p whose clock the test controls through *clock.
func (p *testIdP) verifier(clock *time.Time) *jwksVerifier {
	v := NewJWKS(p.URL, testIssuer, testAudience, nil).(*jwksVerifier)
	if clock != nil {
		v.now = func() time.Time { return *clock }
	}
	return v
}

func (p *testIdP) set(f func(p *testIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *testIdP) fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]string {
	return map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64url(pub.N.Bytes()),
		"e": b64url(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]string {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]string{
		"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
		"x": b64url(b[1:33]), "y": b64url(b[33:]),
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// idpClaims are claims the test IdP would issue: right issuer and audience, valid an hour.
func idpClaims(username string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"preferred_username": username, "email": username + "@example.test",
	}
}

// sign signs claims with method and key, putting kid (if any) in the header.
func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
