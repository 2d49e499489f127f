package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollcall/rollcall/internal/rollcall"
)

var carol = rollcall.Actor{Username: "carol", Email: "carol@example.test"}

func TestJWKSValid(t *testing.T) {
	p := newTestIdP(t)
	v := p.verifier(nil)
	wantActor(t, v, sign(t, jwt.SigningMethodRS256, rsaKid, p.RSA, idpClaims("carol")), carol)
	wantActor(t, v, sign(t, jwt.SigningMethodES256, ecKid, p.EC, idpClaims("carol")), carol)

	// aud may be a list containing ours.
	c := idpClaims("carol")
	c["aud"] = []string{"other", testAudience}
	wantActor(t, v, sign(t, jwt.SigningMethodRS256, rsaKid, p.RSA, c), carol)

	if n := p.fetches(); n != 1 {
		t.Errorf("%d JWKS fetches; want 1 (cached)", n)
	}
}

func TestJWKSClaims(t *testing.T) {
	p := newTestIdP(t)
	v := p.verifier(nil)
	cases := map[string]func(jwt.MapClaims){
		"wrong issuer":   func(c jwt.MapClaims) { c["iss"] = "https://evil.example.test" },
		"no issuer":      func(c jwt.MapClaims) { delete(c, "iss") },
		"wrong audience": func(c jwt.MapClaims) { c["aud"] = "another-api" },
		"no audience":    func(c jwt.MapClaims) { delete(c, "aud") },
		"expired":        func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() },
		"no exp":         func(c jwt.MapClaims) { delete(c, "exp") },
		"no username":    func(c jwt.MapClaims) { delete(c, "preferred_username") },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := idpClaims("carol")
			mutate(c)
			wantErr(t, v, sign(t, jwt.SigningMethodRS256, rsaKid, p.RSA, c), ErrInvalidToken)
		})
	}
}

func TestJWKSKeyChecks(t *testing.T) {
	p := newTestIdP(t)
	v := p.verifier(nil)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := idpClaims("carol")

	wantErr(t, v, sign(t, jwt.SigningMethodRS256, "", p.RSA, c), ErrInvalidToken)     // no kid
	wantErr(t, v, sign(t, jwt.SigningMethodRS256, "nope", p.RSA, c), ErrInvalidToken) // unknown kid
	wantErr(t, v, sign(t, jwt.SigningMethodES256, ecKid, other, c), ErrInvalidToken)  // wrong key, right kid
	wantErr(t, v, sign(t, jwt.SigningMethodES256, rsaKid, p.EC, c), ErrInvalidToken)  // kid of the other type
	wantErr(t, v, sign(t, jwt.SigningMethodRS384, rsaKid, p.RSA, c), ErrInvalidToken) // RS384 not allowed
	wantErr(t, v, sign(t, jwt.SigningMethodPS256, rsaKid, p.RSA, c), ErrInvalidToken) // nor PS256
	wantErr(t, v, unsigned(t, map[string]any{"alg": "none", "kid": rsaKid}, c), ErrInvalidToken)
}

// An unknown kid may mean the IdP rotated: refetch, but at most once a minute.
func TestJWKSUnknownKidRefetch(t *testing.T) {
	p := newTestIdP(t)
	clock := time.Now()
	v := p.verifier(&clock)
	wantActor(t, v, sign(t, jwt.SigningMethodRS256, rsaKid, p.RSA, idpClaims("carol")), carol)

	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.set(func(p *testIdP) { p.keys = append(p.keys, ecJWK("ec-2", &newKey.PublicKey)) })
	rotated := sign(t, jwt.SigningMethodES256, "ec-2", newKey, idpClaims("carol"))

	clock = clock.Add(10 * time.Second)
	for range 5 {
		wantErr(t, v, rotated, ErrInvalidToken)
		wantErr(t, v, sign(t, jwt.SigningMethodRS256, "made-up", p.RSA, idpClaims("x")), ErrInvalidToken)
	}
	if n := p.fetches(); n != 1 {
		t.Fatalf("%d fetches within a minute; want 1", n)
	}
	clock = clock.Add(jwksMinRefetch)
	wantActor(t, v, rotated, carol)
	if n := p.fetches(); n != 2 {
		t.Fatalf("%d fetches; want 2", n)
	}
}

func TestJWKSTTL(t *testing.T) {
	p := newTestIdP(t)
	clock := time.Now()
	v := p.verifier(&clock)
	tok := sign(t, jwt.SigningMethodRS256, rsaKid, p.RSA, idpClaims("carol"))
	wantActor(t, v, tok, carol)
	clock = clock.Add(jwksTTL - time.Second)
	wantActor(t, v, tok, carol)
	if n := p.fetches(); n != 1 {
		t.Fatalf("%d fetches before the TTL; want 1", n)
	}

	// After the TTL the set is fetched again, so a key the IdP removed stops working.
	p.set(func(p *testIdP) { p.keys = p.keys[1:] })
	clock = clock.Add(2 * time.Second)
	wantErr(t, v, tok, ErrInvalidToken)
	if n := p.fetches(); n != 2 {
		t.Fatalf("%d fetches after the TTL; want 2", n)
	}
}

func TestJWKSFetchErrors(t *testing.T) {
	p := newTestIdP(t)
	clock := time.Now()
	v := p.verifier(&clock)
	tok := sign(t, jwt.SigningMethodES256, ecKid, p.EC, idpClaims("carol"))

	for name, breakIt := range map[string]func(*testIdP){
		"HTTP 500":       func(p *testIdP) { p.fail = true },
		"not JSON":       func(p *testIdP) { p.body = "<html>" },
		"no usable keys": func(p *testIdP) { p.body = `{"keys":[{"kty":"oct","kid":"ec-1","k":"c2VjcmV0"}]}` },
	} {
		p.set(breakIt)
		clock = clock.Add(jwksRetry)
		_, err := v.Verify(context.Background(), tok)
		if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("%s: err = %v; want ErrKeysUnavailable only", name, err)
		}
		p.set(func(p *testIdP) { p.fail, p.body = false, "" })
	}

	// A failure is not retried on every request...
	p.set(func(p *testIdP) { p.fail = true })
	clock = clock.Add(jwksRetry)
	n := p.fetches()
	for range 3 {
		wantErr(t, v, tok, ErrKeysUnavailable)
	}
	if got := p.fetches() - n; got != 1 {
		t.Fatalf("%d fetches while failing; want 1", got)
	}
	// ...but is after a short pause, and recovers.
	p.set(func(p *testIdP) { p.fail = false })
	clock = clock.Add(jwksRetry)
	wantActor(t, v, tok, carol)

	// Once a set is known, an IdP outage at TTL time keeps the old keys working.
	p.set(func(p *testIdP) { p.fail = true })
	clock = clock.Add(jwksTTL)
	wantActor(t, v, tok, carol)
}

func TestJWKSUnreachable(t *testing.T) {
	v := NewJWKS("http://127.0.0.1:1/jwks", testIssuer, testAudience, nil)
	rk, _ := testKeys()
	wantErr(t, v, sign(t, jwt.SigningMethodRS256, rsaKid, rk, idpClaims("carol")), ErrKeysUnavailable)
}

func TestJWKSWithoutIssuerOrAudienceFailsClosed(t *testing.T) {
	p := newTestIdP(t)
	c := idpClaims("carol")
	delete(c, "iss")
	delete(c, "aud")
	tok := sign(t, jwt.SigningMethodRS256, rsaKid, p.RSA, c)
	wantErr(t, NewJWKS(p.URL, "", testAudience, nil), tok, ErrInvalidToken)
	wantErr(t, NewJWKS(p.URL, testIssuer, "", nil), tok, ErrInvalidToken)
}

func TestJWKParsing(t *testing.T) {
	rk, ek := testKeys()
	good := []map[string]string{rsaJWK("r", &rk.PublicKey), ecJWK("e", &ek.PublicKey)}
	for _, m := range good {
		if _, _, err := toJWK(m).publicKey(); err != nil {
			t.Errorf("%v: %v", m, err)
		}
	}
	bad := map[string]func(map[string]string){
		"encryption key": func(m map[string]string) { m["use"] = "enc" },
		"other alg":      func(m map[string]string) { m["alg"] = "PS256" },
		"short modulus":  func(m map[string]string) { m["n"] = m["n"][:100] },
		"even exponent":  func(m map[string]string) { m["e"] = b64url([]byte{1, 0, 0}) },
		"unknown kty":    func(m map[string]string) { m["kty"] = "oct" },
	}
	for name, mutate := range bad {
		m := rsaJWK("r", &rk.PublicKey)
		mutate(m)
		if _, _, err := toJWK(m).publicKey(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	badEC := map[string]func(map[string]string){
		"P-384":        func(m map[string]string) { m["crv"] = "P-384" },
		"off curve":    func(m map[string]string) { m["y"] = m["x"] },
		"short x":      func(m map[string]string) { m["x"] = m["x"][:40] },
		"RS256 alg":    func(m map[string]string) { m["alg"] = "RS256" },
		"not base64":   func(m map[string]string) { m["x"] = "!!" },
		"missing y":    func(m map[string]string) { delete(m, "y") },
		"missing crv":  func(m map[string]string) { delete(m, "crv") },
		"signing else": func(m map[string]string) { m["use"] = "enc" },
	}
	for name, mutate := range badEC {
		m := ecJWK("e", &ek.PublicKey)
		mutate(m)
		if _, _, err := toJWK(m).publicKey(); err == nil {
			t.Errorf("EC %s: accepted", name)
		}
	}
}

func toJWK(m map[string]string) jwk {
	return jwk{Kty: m["kty"], Kid: m["kid"], Use: m["use"], Alg: m["alg"], Crv: m["crv"],
		N: m["n"], E: m["e"], X: m["x"], Y: m["y"]}
}
