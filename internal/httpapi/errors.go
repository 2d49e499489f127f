// Package httpapi is rollcall's HTTP adapter: plain net/http handlers (wrapped for Lambda by
// aws-lambda-go-api-proxy), request decoding, authentication and the Django REST Framework
// error shapes of docs/api.md#auth-and-errors.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/aws/smithy-go"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Error details fixed by docs/api.md#auth-and-errors (DRF's wording).
const (
	detailNoCredentials = "Authentication credentials were not provided."
	detailInvalidToken  = "Invalid Token."
	detailForbidden     = "You do not have permission to perform this action."
	detailNotFound      = "Not found."
	detailServerError   = "A server error occurred."
	detailInternal      = "Internal error."
	detailThrottled     = "Request was throttled. Expected available in 1 second."
)

type detail struct {
	Detail string `json:"detail"`
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"A server error occurred."}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError maps an error to its status and body. It is the one place errors are logged:
// 5xx at error level with the cause; 4xx are the client's and appear in the access log only.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	var qe *rollcall.QuotaError
	if errors.As(err, &qe) {
		w.Header().Set("Retry-After", strconv.Itoa(int(qe.RetryAfter.Seconds())+1))
		writeJSON(w, http.StatusTooManyRequests, detail{qe.Detail})
		return
	}
	switch {
	case status >= 500:
		logger(r.Context()).ErrorContext(r.Context(), "request failed", "status", status, "error", err.Error())
	case status == http.StatusTooManyRequests:
		logger(r.Context()).WarnContext(r.Context(), "request throttled by the store", "error", err.Error())
	}
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "2")
	}
	writeJSON(w, status, body)
}

func errorResponse(err error) (int, any) {
	var (
		ve  *rollcall.ValidationError
		ce  *rollcall.ConflictError
		ge  *rollcall.GoneError
		te  *rollcall.TooLargeError
		ue  *rollcall.UnprocessableError
		una *rollcall.UnavailableError
		fe  *rollcall.ForbiddenError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Fields
	case errors.Is(err, rollcall.ErrKeysUnavailable):
		return http.StatusServiceUnavailable, detail{"The identity provider's keys cannot be fetched; retry shortly."}
	case errors.Is(err, rollcall.ErrNoCredentials):
		return http.StatusUnauthorized, detail{detailNoCredentials}
	case errors.Is(err, rollcall.ErrInvalidToken), errors.Is(err, rollcall.ErrUnauthorized):
		return http.StatusUnauthorized, detail{detailInvalidToken}
	case errors.As(err, &fe):
		return http.StatusForbidden, detail{fe.Detail}
	case errors.Is(err, rollcall.ErrForbidden):
		return http.StatusForbidden, detail{detailForbidden}
	case errors.Is(err, rollcall.ErrNotFound):
		return http.StatusNotFound, detail{detailNotFound}
	case errors.As(err, &ce):
		return http.StatusConflict, detail{ce.Detail}
	case errors.As(err, &ge):
		return http.StatusGone, detail{ge.Detail}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, detail{"Request body is larger than 1 MiB."}
	case errors.As(err, &te):
		return http.StatusRequestEntityTooLarge, detail{te.Detail}
	case errors.As(err, &ue):
		return http.StatusUnprocessableEntity, detail{ue.Detail}
	case errors.Is(err, rollcall.ErrThrottled): // before outages: a throttled store call is wrapped as one
		return http.StatusTooManyRequests, detail{detailThrottled}
	case isStoreValidation(err):
		// A value reached the store that it refuses: a bug (values are checked before any
		// store call), not an outage to retry.
		return http.StatusInternalServerError, detail{detailInternal}
	case errors.As(err, &una):
		return http.StatusServiceUnavailable, detail{una.Detail}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, detail{"The request took too long; retry shortly."}
	}
	var me *mediaError
	if errors.As(err, &me) {
		return http.StatusUnsupportedMediaType, detail{me.Error()}
	}
	var pe *parseError
	if errors.As(err, &pe) {
		return http.StatusBadRequest, detail{pe.msg}
	}
	return http.StatusInternalServerError, detail{detailServerError}
}

// logger returns the request's logger (with its request id), or the default.
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

type loggerKey struct{}

// isStoreValidation reports a DynamoDB ValidationException (a key too long, an item over
// 400 KB, ...) anywhere in err's chain.
func isStoreValidation(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException"
}
