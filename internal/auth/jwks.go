package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollcall/rollcall/internal/rollcall"
)

const (
	// jwksTTL: how long a fetched key set is trusted before it is fetched again, so removed
	// (revoked) keys stop being accepted within minutes.
	jwksTTL = 10 * time.Minute
	// jwksMinRefetch: an unknown kid triggers a refetch (the IdP may have rotated), but at
	// most this often, so tokens with made-up kids cannot hammer the IdP through us.
	jwksMinRefetch = time.Minute
	// jwksRetry: after a failed fetch with no usable set, wait this long before trying again.
	jwksRetry = 5 * time.Second
	// jwksFetchTimeout and jwksMaxBody bound what one fetch can cost.
	jwksFetchTimeout = 5 * time.Second
	jwksMaxBody      = 1 << 20
	// minRSABits: smaller RSA keys are refused whatever the IdP publishes.
	minRSABits = 2048
)

type jwksVerifier struct {
	url, issuer, audience string
	client                *http.Client
	parser                *jwt.Parser
	now                   func() time.Time // tests move the clock
	maxLifetime           time.Duration

	mu      sync.Mutex // held across a fetch too: concurrent misses wait for one fetch
	keys    map[string]any
	fetched time.Time // last successful fetch
	tried   time.Time // last fetch attempt
	lastErr error     // of the last attempt, if it failed
}

// NewJWKS returns the deployed-stage verifier: RS256 or ES256 tokens whose kid is in the key
// set at url, with iss == issuer, aud containing audience, and exp required. The key set is
// fetched on first use. client nil means a client with a timeout. Empty issuer or audience
// reject every token (FromConfig refuses them up front).
func NewJWKS(url, issuer, audience string, client *http.Client) Verifier {
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	v := &jwksVerifier{url: url, issuer: issuer, audience: audience, client: client, now: time.Now}
	v.parser = jwt.NewParser(
		// Only asymmetric algorithms: an HS256 token "signed" with the public key is refused
		// before any key is looked up.
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

func (v *jwksVerifier) setMaxLifetime(d time.Duration) { v.maxLifetime = d }

func (v *jwksVerifier) Verify(ctx context.Context, bearer string) (rollcall.Actor, error) {
	if v.issuer == "" || v.audience == "" {
		// jwt.WithIssuer("") would silently skip the check; fail closed instead.
		return rollcall.Actor{}, fmt.Errorf("%w: verifier has no issuer or audience", ErrInvalidToken)
	}
	return verify(v.parser, bearer, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid in token header")
		}
		return v.key(ctx, t.Method.Alg(), kid)
	}, v.now(), v.maxLifetime)
}

// key returns the public key for (alg, kid), fetching the set when it is missing or older
// than jwksTTL, or when the kid is unknown and the last fetch is older than jwksMinRefetch.
// If a refetch fails, keys of the previous set keep working: an IdP outage should not log
// everyone out. An error wraps ErrKeysUnavailable only when the answer is unknowable.
func (v *jwksVerifier) key(ctx context.Context, alg, kid string) (any, error) {
	id := alg + "\x00" + kid
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	k, known := v.keys[id]
	var due bool
	if v.keys == nil || now.Sub(v.fetched) >= jwksTTL {
		due = v.tried.IsZero() || now.Sub(v.tried) >= jwksRetry
	} else if !known {
		due = now.Sub(v.tried) >= jwksMinRefetch
	}
	if due {
		v.tried = now
		keys, err := v.fetch(ctx)
		v.lastErr = err
		if err == nil {
			v.keys, v.fetched = keys, now
			k, known = keys[id]
		}
	}
	switch {
	case known:
		return k, nil
	case v.keys == nil || (due && v.lastErr != nil):
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, v.lastErr)
	default:
		return nil, fmt.Errorf("unknown kid %q for %s", kid, alg)
	}
}

func (v *jwksVerifier) fetch(ctx context.Context) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: HTTP %d", v.url, resp.StatusCode)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, jwksMaxBody)).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks %s: %v", v.url, err)
	}
	keys := map[string]any{}
	for _, j := range set.Keys {
		// Keys this verifier cannot use (encryption keys, other types or curves, symmetric
		// "oct" keys) are skipped, not fatal: a set may legitimately hold them.
		alg, key, err := j.publicKey()
		if err != nil || j.Kid == "" {
			continue
		}
		if id := alg + "\x00" + j.Kid; keys[id] == nil {
			keys[id] = key
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks %s: no usable RS256/ES256 signing keys", v.url)
	}
	return keys, nil
}

// jwk is the part of an RFC 7517 key that matters here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// publicKey returns the key and the one algorithm it may verify, so that an RSA key is never
// offered to an ES256 token or the reverse.
func (j jwk) publicKey() (string, any, error) {
	if j.Use != "" && j.Use != "sig" {
		return "", nil, errors.New("not a signing key")
	}
	var alg string
	var key any
	switch j.Kty {
	case "RSA":
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return "", nil, errors.New("bad RSA key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return "", nil, errors.New("weak RSA key")
		}
		alg, key = jwt.SigningMethodRS256.Alg(), pub
	case "EC":
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if j.Crv != "P-256" || err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return "", nil, errors.New("bad EC key")
		}
		// ParseUncompressedPublicKey also checks that the point is on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", nil, err
		}
		alg, key = jwt.SigningMethodES256.Alg(), pub
	default:
		return "", nil, fmt.Errorf("unsupported kty %q", j.Kty)
	}
	if j.Alg != "" && j.Alg != alg {
		return "", nil, fmt.Errorf("key is for %s", j.Alg)
	}
	return alg, key, nil
}

// b64 decodes base64url, tolerating the padding some IdPs add.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
