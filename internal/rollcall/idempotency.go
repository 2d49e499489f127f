package rollcall

import (
	"context"
	"errors"
	"time"
)

// Idempotency-Key records: the port the HTTP adapter keeps them through and the store
// implements (docs/idempotency.md). They live in the domain so that neither adapter depends
// on the other.

// StoredResponse is the final response to a request with an Idempotency-Key.
type StoredResponse struct {
	RequestHash string // SHA-256 of method, path, content type and body
	Status      int
	Header      map[string][]string // what the handler set (Content-Type, Location, Cache-Control, ...)
	Body        []byte
}

// Reservation is the state of an Idempotency-Key found by Reserve when it could not take it:
// either a response (the key is done) or another attempt that is still running.
type Reservation struct {
	RequestHash string
	Response    *StoredResponse // nil while the attempt that holds the key runs
}

// ErrReservationLost means the attempt no longer holds its key (it lapsed and another attempt
// took it over): its response is not stored.
var ErrReservationLost = errors.New("idempotency: reservation lost")

// IdempotencyStore keeps Idempotency-Keys by (scope, key).
//
// Reserve takes the key for one attempt (a conditional write) until the given time: it
// returns a nil Reservation when the attempt holds the key, else what holds it. A running
// reservation past its time is free (its attempt is gone), so a crashed attempt blocks its
// key only until then. Complete stores the attempt's final response in place of its
// reservation; Release gives the key up without a response. Both act only while the attempt
// still holds the key.
type IdempotencyStore interface {
	Reserve(ctx context.Context, scope, key, requestHash, attempt string, until time.Time, ttl time.Duration) (*Reservation, error)
	Complete(ctx context.Context, scope, key, attempt string, rec *StoredResponse, ttl time.Duration) error
	Release(ctx context.Context, scope, key, attempt string) error
}
