package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// A value DynamoDB refuses is a bug: 500 "Internal error.", never a 503 to retry.
func TestStoreValidationIsInternalError(t *testing.T) {
	err := &rollcall.UnavailableError{Detail: "The enrollment store is unavailable; retry shortly.",
		Err: fmt.Errorf("get user: %w", &smithy.GenericAPIError{Code: "ValidationException", Message: "key too long"})}
	status, body := errorResponse(err)
	if status != http.StatusInternalServerError || body != (detail{"Internal error."}) {
		t.Fatalf("%d %v", status, body)
	}
	status, _ = errorResponse(&rollcall.UnavailableError{Detail: "x", Err: &smithy.GenericAPIError{Code: "InternalServerError"}})
	if status != http.StatusServiceUnavailable {
		t.Fatalf("an outage is %d", status)
	}
}
