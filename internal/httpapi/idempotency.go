package httpapi

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// IdempotencyTTL is how long a key is remembered.
const IdempotencyTTL = 24 * time.Hour

const maxIdempotencyKeyLen = 255

// Details of the Idempotency-Key answers.
const (
	detailKeyInProgress = "A request with this Idempotency-Key is in progress."
	detailKeyReused     = "This Idempotency-Key was already used with another request."
)

// idempotent makes a write retry-safe with the Idempotency-Key header (see
// docs/idempotency.md). The request first reserves its key with a conditional write; only
// then does it run. A twin that arrives while it runs gets 409, and one with another body 422,
// without running. A final answer to an authorized request (2xx, and the 4xx that say
// something about the request) is stored and replayed, with its headers, to every later
// request with that key and body; anything else (401, 403, 404, 429, 5xx) releases the key,
// so that a retry runs again, which the writes' no-op semantics make safe.
func (a *API) idempotent(next func(http.ResponseWriter, *http.Request, rollcall.Actor)) func(http.ResponseWriter, *http.Request, rollcall.Actor) {
	return func(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || a.Idem == nil {
			next(w, r, actor)
			return
		}
		if len(key) > maxIdempotencyKeyLen || !printable(key) {
			writeError(w, r, rollcall.FieldError("Idempotency-Key", "Must be 1 to 255 printable ASCII characters."))
			return
		}
		limitBody(w, r)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, r, bodyError(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		io.WriteString(sum, r.Method+" "+r.URL.Path+"\n"+r.Header.Get("Content-Type")+"\n")
		sum.Write(body)
		hash := hex.EncodeToString(sum.Sum(nil))
		// The scope keeps callers' and routes' keys apart; the store hashes it into the key, so
		// its length (a long path) never reaches the table.
		scope := rollcall.NormalizeUsername(actor.Username) + "#" + r.Method + " " + r.URL.Path

		attempt := rollcall.NewTokenNonce()
		until := a.reservationUntil(r.Context())
		held, err := a.Idem.Reserve(r.Context(), scope, key, hash, attempt, until, IdempotencyTTL)
		if err != nil {
			writeError(w, r, &rollcall.UnavailableError{Detail: "The enrollment store is unavailable; retry shortly.", Err: err})
			return
		}
		if held != nil {
			switch {
			case held.RequestHash != hash:
				writeError(w, r, &rollcall.UnprocessableError{Detail: detailKeyReused})
			case held.Response == nil:
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusConflict, detail{detailKeyInProgress})
			default:
				body, err := a.openBody(held.Response.Body)
				if err != nil {
					// Sealed with another key (it changed within the record's day): a bug to
					// look at, not something a retry fixes.
					logger(r.Context()).ErrorContext(r.Context(), "idempotency: stored response cannot be opened", "error", err.Error())
					writeJSON(w, http.StatusInternalServerError, detail{detailInternal})
					return
				}
				prev := *held.Response
				prev.Body = body
				replay(w, &prev)
			}
			return
		}

		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next(rec, r, actor)
		ctx := context.WithoutCancel(r.Context())
		if keepResponse(rec.status) {
			err := a.Idem.Complete(ctx, scope, key, attempt, &rollcall.StoredResponse{
				RequestHash: hash, Status: rec.status, Header: rec.header.Clone(), Body: a.sealBody(rec.body.Bytes())}, IdempotencyTTL)
			if err != nil {
				logger(ctx).WarnContext(ctx, "idempotency: response not stored", "error", err.Error())
			}
		} else if err := a.Idem.Release(ctx, scope, key, attempt); err != nil && !errors.Is(err, rollcall.ErrReservationLost) {
			// The reservation lapses at its time anyway.
			logger(ctx).WarnContext(ctx, "idempotency: key not released", "error", err.Error())
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// keepResponse says which answers are final: what the request itself decided. 401 and 403
// say who asked, 404 may be an unauthorized caller's answer too, 429 and 5xx say when.
func keepResponse(status int) bool {
	switch {
	case status >= 500, status < 200:
		return false
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusNotFound,
		status == http.StatusTooManyRequests, status == http.StatusConflict:
		return false
	}
	return true
}

// reservationMargin is how much longer a reservation lives than the course leases its
// attempt may take (see rollcall.Service.LeaseUntil): a key is only free again once every
// lease its crashed attempt held has lapsed.
const reservationMargin = 5 * time.Second

// reservationUntil is when a reservation taken now lapses if its attempt never finishes.
func (a *API) reservationUntil(ctx context.Context) time.Time {
	return a.Svc.LeaseUntil(ctx, time.Now()).Add(reservationMargin)
}

func replay(w http.ResponseWriter, prev *rollcall.StoredResponse) {
	for k, v := range prev.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(prev.Status)
	_, _ = w.Write(prev.Body)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// bufferedResponse holds a response until it is known whether to keep it.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

// Stored answers may carry secrets (the Redu create's invitation_url holds a token), so they
// are sealed at rest: AES-256-GCM with a key derived from IdemSealKey (nil keeps them plain).

func (a *API) aead() cipher.AEAD {
	if len(a.IdemSealKey) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, a.IdemSealKey)
	m.Write([]byte("idempotency-response-v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

func (a *API) sealBody(body []byte) []byte {
	g := a.aead()
	if g == nil {
		return body
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return g.Seal(nonce, nonce, body, nil)
}

func (a *API) openBody(sealed []byte) ([]byte, error) {
	g := a.aead()
	if g == nil {
		return sealed, nil
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("sealed body too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], nil)
}
