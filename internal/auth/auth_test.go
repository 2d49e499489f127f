package auth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollcall/rollcall/internal/rollcall"
)

var testSecret = []byte("test-secret-of-some-length")

// hsToken signs claims with HS256 and testSecret.
func hsToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, "", testSecret, claims)
}

func localClaims(exp time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"username": "alice", "email": "alice@example.test", "iat": now.Unix(), "exp": now.Add(exp).Unix()}
}

// unsigned builds "header.payload." by hand, as an attacker would.
func unsigned(t *testing.T, header, payload map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	return b64url(h) + "." + b64url(p) + "."
}

func wantErr(t *testing.T, v Verifier, tok string, want error) {
	t.Helper()
	a, err := v.Verify(context.Background(), tok)
	if !errors.Is(err, want) {
		t.Fatalf("Verify = %+v, %v; want %v", a, err, want)
	}
}

func wantActor(t *testing.T, v Verifier, tok string, want rollcall.Actor) {
	t.Helper()
	a, err := v.Verify(context.Background(), tok)
	if err != nil || a != want {
		t.Fatalf("Verify = %+v, %v; want %+v", a, err, want)
	}
}

func TestHS256Valid(t *testing.T) {
	v := NewHS256(testSecret)
	tok, err := IssueLocal(testSecret, "alice", "alice@example.test", false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantActor(t, v, tok, rollcall.Actor{Username: "alice", Email: "alice@example.test"})

	tok, _ = IssueLocal(testSecret, "staff", "", true, time.Hour)
	wantActor(t, v, tok, rollcall.Actor{Username: "staff", Staff: true})
}

func TestHS256AlgNone(t *testing.T) {
	v := NewHS256(testSecret)
	payload := map[string]any{"username": "mallory", "administrator": true, "exp": time.Now().Add(time.Hour).Unix()}
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		tok := unsigned(t, map[string]any{"alg": alg, "typ": "JWT"}, payload)
		wantErr(t, v, tok, ErrInvalidToken)
		// Also with a signature segment someone pasted on.
		wantErr(t, v, tok+"c2ln", ErrInvalidToken)
	}
	// No alg at all.
	wantErr(t, v, unsigned(t, map[string]any{"typ": "JWT"}, payload), ErrInvalidToken)
}

func TestHS256WrongKey(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, "", []byte("another-secret"), localClaims(time.Hour))
	wantErr(t, NewHS256(testSecret), tok, ErrInvalidToken)
}

func TestHS256EmptySecret(t *testing.T) {
	// A verifier misconfigured with no secret must not accept tokens "signed" with no key.
	tok := sign(t, jwt.SigningMethodHS256, "", []byte{}, localClaims(time.Hour))
	wantErr(t, NewHS256(nil), tok, ErrInvalidToken)
}

func TestHS256TimeClaims(t *testing.T) {
	v := NewHS256(testSecret)
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }

	wantErr(t, v, hsToken(t, localClaims(-time.Hour)), ErrInvalidToken) // expired
	wantErr(t, v, hsToken(t, localClaims(-2*leeway)), ErrInvalidToken)  // beyond the leeway
	wantActor(t, v, hsToken(t, localClaims(-leeway/3)), rollcall.Actor{ // within it
		Username: "alice", Email: "alice@example.test"})

	noExp := localClaims(time.Hour)
	delete(noExp, "exp")
	wantErr(t, v, hsToken(t, noExp), ErrInvalidToken)

	strExp := localClaims(time.Hour)
	strExp["exp"] = "4102444800"
	wantErr(t, v, hsToken(t, strExp), ErrInvalidToken)

	nbf := localClaims(time.Hour)
	nbf["nbf"] = at(10 * time.Minute)
	wantErr(t, v, hsToken(t, nbf), ErrInvalidToken)

	iat := localClaims(time.Hour)
	iat["iat"] = at(10 * time.Minute)
	wantErr(t, v, hsToken(t, iat), ErrInvalidToken)
}

func TestHS256OtherHMACRejected(t *testing.T) {
	v := NewHS256(testSecret)
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		wantErr(t, v, sign(t, m, "", testSecret, localClaims(time.Hour)), ErrInvalidToken)
	}
}

func TestHS256RejectsAsymmetric(t *testing.T) {
	rk, ek := testKeys()
	v := NewHS256(testSecret)
	wantErr(t, v, sign(t, jwt.SigningMethodRS256, rsaKid, rk, localClaims(time.Hour)), ErrInvalidToken)
	wantErr(t, v, sign(t, jwt.SigningMethodES256, ecKid, ek, localClaims(time.Hour)), ErrInvalidToken)
}

// The classic key-confusion attack: take the IdP's public key, which anyone can read, use it
// as an HMAC secret and present the HS256 token to the JWKS verifier.
func TestJWKSRejectsHS256SignedWithPublicKey(t *testing.T) {
	p := newTestIdP(t)
	v := p.verifier(nil)
	der, err := x509.MarshalPKIXPublicKey(&p.RSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, secret := range [][]byte{pemKey, der, p.RSA.PublicKey.N.Bytes()} {
		claims := idpClaims("mallory")
		claims["administrator"] = true
		wantErr(t, v, sign(t, jwt.SigningMethodHS256, rsaKid, secret, claims), ErrInvalidToken)
	}
	if n := p.fetches(); n != 0 {
		t.Errorf("HS256 tokens made %d JWKS fetches; want them refused before key lookup", n)
	}
}

func TestClaimsMapping(t *testing.T) {
	v := NewHS256(testSecret)
	exp := time.Now().Add(time.Hour).Unix()
	cases := []struct {
		name   string
		claims jwt.MapClaims
		want   rollcall.Actor
		err    error
	}{
		{"preferred_username fallback", jwt.MapClaims{"preferred_username": "bob", "exp": exp},
			rollcall.Actor{Username: "bob"}, nil},
		{"username wins", jwt.MapClaims{"username": "bob", "preferred_username": "robert", "exp": exp},
			rollcall.Actor{Username: "bob"}, nil},
		{"empty username falls back", jwt.MapClaims{"username": "", "preferred_username": "bob", "exp": exp},
			rollcall.Actor{Username: "bob"}, nil},
		{"administrator string", jwt.MapClaims{"username": "s", "administrator": "true", "exp": exp},
			rollcall.Actor{Username: "s", Staff: true}, nil},
		{"administrator string case", jwt.MapClaims{"username": "s", "administrator": "True", "exp": exp},
			rollcall.Actor{Username: "s", Staff: true}, nil},
		{"administrator false string", jwt.MapClaims{"username": "s", "administrator": "false", "exp": exp},
			rollcall.Actor{Username: "s"}, nil},
		{"administrator other string", jwt.MapClaims{"username": "s", "administrator": "yes", "exp": exp},
			rollcall.Actor{Username: "s"}, nil},
		{"administrator number", jwt.MapClaims{"username": "s", "administrator": 1, "exp": exp},
			rollcall.Actor{Username: "s"}, nil},
		{"no username", jwt.MapClaims{"email": "a@example.test", "administrator": true, "exp": exp},
			rollcall.Actor{}, ErrInvalidToken},
		{"username not a string", jwt.MapClaims{"username": 42, "exp": exp}, rollcall.Actor{}, ErrInvalidToken},
		{"email not a string", jwt.MapClaims{"username": "a", "email": []string{"x"}, "exp": exp},
			rollcall.Actor{}, ErrInvalidToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := v.Verify(context.Background(), hsToken(t, c.claims))
			if !errors.Is(err, c.err) || a != c.want {
				t.Fatalf("Verify = %+v, %v; want %+v, %v", a, err, c.want, c.err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	v := NewHS256(testSecret)
	wantErr(t, v, "", ErrNoCredentials)
	for _, tok := range []string{".", "..", "...", "a.b.c", "not a token", strings.Repeat("a", maxTokenLen+1)} {
		wantErr(t, v, tok, ErrInvalidToken)
	}
	// A valid token with trailing junk on the signature.
	tok, _ := IssueLocal(testSecret, "alice", "", false, time.Hour)
	wantErr(t, v, tok+"x", ErrInvalidToken)
}

func TestFromConfig(t *testing.T) {
	v, err := FromConfig("local", "s3cret", "", "", "")
	if _, ok := v.(*hs256Verifier); !ok || err != nil {
		t.Fatalf("local: %T, %v; want HS256", v, err)
	}
	// HS256 is for the local stage only, whatever else is configured.
	v, err = FromConfig("prod", "s3cret", "https://idp/jwks", "iss", "aud")
	if _, ok := v.(*jwksVerifier); !ok || err != nil {
		t.Fatalf("prod: %T, %v; want JWKS", v, err)
	}
	for _, c := range [][5]string{
		{"local", "", "", "", ""},
		{"prod", "s3cret", "", "iss", "aud"},
		{"dev", "", "https://idp/jwks", "", "aud"},
		{"dev", "", "https://idp/jwks", "iss", ""},
	} {
		if v, err := FromConfig(c[0], c[1], c[2], c[3], c[4]); err == nil {
			t.Errorf("FromConfig%q = %T; want an error", c, v)
		}
	}
}

func TestIssueLocalRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		secret []byte
		user   string
		ttl    time.Duration
	}{{nil, "a", time.Hour}, {testSecret, "", time.Hour}, {testSecret, "a", 0}} {
		if _, err := IssueLocal(c.secret, c.user, "", false, c.ttl); err == nil {
			t.Errorf("IssueLocal(%q, %q, %v): want an error", c.secret, c.user, c.ttl)
		}
	}
}
