package app

import "context"

// Builder builds the Lambda handler of one function of template.yaml from a configuration: a
// value that lambda.Start accepts (and lambda.NewHandler wraps for in-process invocation).
// HTTP functions take events.APIGatewayV2HTTPRequest; stream functions take
// events.DynamoDBEvent and return events.DynamoDBEventResponse; scheduled functions take a
// json.RawMessage.
//
// Each function's builder lives with what it needs: HTTP functions in internal/app/web, the
// mail functions in internal/app/mail, the others here. functions/<name>/main.go names its
// one builder, so its binary links only that function; internal/app/functions is the table of
// all of them for the local stack and the tests.
type Builder func(ctx context.Context, c Config) (any, error)
