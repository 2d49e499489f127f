package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// StoredResponse is the first response to a request with an Idempotency-Key.
type StoredResponse struct {
	RequestHash string // SHA-256 of method, path and body
	Status      int
	ContentType string
	Body        []byte
}

// IdempotencyStore keeps responses by (caller, key). Put stores rec unless a response is
// already stored, and returns the one that is stored in the end.
type IdempotencyStore interface {
	GetResponse(ctx context.Context, scope, key string) (*StoredResponse, error)
	PutResponse(ctx context.Context, scope, key string, rec *StoredResponse, ttl time.Duration) (*StoredResponse, error)
}

// IdempotencyTTL is how long a key is remembered.
const IdempotencyTTL = 24 * time.Hour

const maxIdempotencyKeyLen = 255

// idempotent makes a write retry-safe with the Idempotency-Key header: the same key and body
// get the first response again without running anything; the same key with another body is a
// 422. Only final answers are kept (2xx and 4xx); a 5xx is not, so a retry after an outage
// runs again, which bulk enroll's no-op semantics make safe.
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
		scope := actor.Username + "#" + r.Method + " " + r.URL.Path

		prev, err := a.Idem.GetResponse(r.Context(), scope, key)
		if err != nil {
			writeError(w, r, &rollcall.UnavailableError{Detail: "The enrollment store is unavailable; retry shortly.", Err: err})
			return
		}
		if prev != nil {
			replay(w, r, prev, hash)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next(rec, r.WithContext(rollcall.WithRequestKey(r.Context(), scope+"#"+key)), actor)
		if rec.status < 500 {
			stored, err := a.Idem.PutResponse(context.WithoutCancel(r.Context()), scope, key, &StoredResponse{
				RequestHash: hash, Status: rec.status, ContentType: rec.header.Get("Content-Type"), Body: rec.body.Bytes()}, IdempotencyTTL)
			if err != nil {
				logger(r.Context()).WarnContext(r.Context(), "idempotency: response not stored", "error", err.Error())
			} else if stored != nil && stored.RequestHash == hash && stored.Status != rec.status {
				// A concurrent twin finished first: answer as it did.
				replay(w, r, stored, hash)
				return
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

func replay(w http.ResponseWriter, r *http.Request, prev *StoredResponse, hash string) {
	if prev.RequestHash != hash {
		writeError(w, r, &rollcall.UnprocessableError{Detail: "This Idempotency-Key was already used with another request."})
		return
	}
	if prev.ContentType != "" {
		w.Header().Set("Content-Type", prev.ContentType)
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
