// Package rollcall is the enrollment domain: courses, users, enrollments and invitations, the
// rules of bulk enroll, and the Service that applies them through a Store. It knows nothing of
// HTTP, API Gateway or DynamoDB; adapters live in sibling packages (httpapi, dynamo, ses, auth).
package rollcall

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Sentinel errors. Adapters map them to HTTP statuses (see httpapi).
var (
	ErrNotFound      = errors.New("not found")
	ErrForbidden     = errors.New("forbidden")
	ErrUnauthorized  = errors.New("unauthorized")
	ErrVersionChange = errors.New("item changed concurrently")
	// ErrThrottled means the store refused for capacity after retries: a 429, not an outage.
	ErrThrottled = errors.New("throttled by the store")
)

// ValidationError is a 400 with Django REST Framework's shape: field -> messages, and
// "non_field_errors" for cross-field problems.
type ValidationError struct {
	Fields map[string][]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := "invalid request:"
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%q", k, e.Fields[k])
	}
	return s
}

// Add records one message for a field.
func (e *ValidationError) Add(field, msg string) {
	if e.Fields == nil {
		e.Fields = map[string][]string{}
	}
	e.Fields[field] = append(e.Fields[field], msg)
}

// OrNil returns e if it holds any message.
func (e *ValidationError) OrNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// FieldError is a ValidationError with one message.
func FieldError(field, msg string) *ValidationError {
	v := &ValidationError{}
	v.Add(field, msg)
	return v
}

// NonFieldError is a cross-field ValidationError.
func NonFieldError(msg string) *ValidationError { return FieldError("non_field_errors", msg) }

// ConflictError is a 409 (a username or email already taken).
type ConflictError struct{ Detail string }

func (e *ConflictError) Error() string { return e.Detail }

// GoneError is a 410 (an invitation that expired or can no longer be used).
type GoneError struct{ Detail string }

func (e *GoneError) Error() string { return e.Detail }

// TooLargeError is a 413.
type TooLargeError struct{ Detail string }

func (e *TooLargeError) Error() string { return e.Detail }

// UnprocessableError is a 422 (an Idempotency-Key reused with another body).
type UnprocessableError struct{ Detail string }

func (e *UnprocessableError) Error() string { return e.Detail }

// UnavailableError is a 503: the store or the mail service is out, or a course stays busy.
// Err is the cause, for the log; Detail is what the client sees.
type UnavailableError struct {
	Detail string
	Err    error
}

func (e *UnavailableError) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}
func (e *UnavailableError) Unwrap() error { return e.Err }

// Invitation answers that docs/api.md#invitations fixes.
var (
	ErrInvitationExpired = &GoneError{Detail: "This invitation has expired."}
	ErrInvitationInvalid = &GoneError{Detail: "This invitation is no longer valid."}
)

// QuotaError is a 429 with its own detail and wait.
type QuotaError struct {
	Detail     string
	RetryAfter time.Duration
}

func (e *QuotaError) Error() string { return e.Detail }

// ForbiddenError is a 403 with its own detail; it is ErrForbidden too.
type ForbiddenError struct{ Detail string }

func (e *ForbiddenError) Error() string { return e.Detail }

// Is makes errors.Is(err, ErrForbidden) hold.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }
