package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// MarkThrottling is an option of the DynamoDB client: an error that is still throttling after
// the SDK's retries (ThrottlingException, ProvisionedThroughputExceededException,
// RequestLimitExceeded, ...) also matches rollcall.ErrThrottled. The API then answers 429
// with Retry-After (docs/api.md#auth-and-errors) instead of 503: the table is there, the caller should
// slow down.
func MarkThrottling(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		// Initialize is the outermost step: it sees the error the retries ended with.
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("rollcallMarkThrottling",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil && retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
					err = &throttledError{err}
				}
				return out, md, err
			}), middleware.Before)
	})
}

// throttledError is a throttling error from DynamoDB that matches rollcall.ErrThrottled.
type throttledError struct{ err error }

func (e *throttledError) Error() string        { return e.err.Error() }
func (e *throttledError) Unwrap() error        { return e.err }
func (e *throttledError) Is(target error) bool { return target == rollcall.ErrThrottled }
