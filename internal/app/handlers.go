package app

import (
	"context"
	"fmt"
)

// Handler returns the Lambda handler of the function with this logical id in template.yaml:
// a value that lambda.Start accepts (and lambda.NewHandler wraps for in-process invocation).
// HTTP functions take events.APIGatewayV2HTTPRequest; MailerFunction and AuditFunction take
// events.DynamoDBEvent and return events.DynamoDBEventResponse; ExpireInvitationsFunction takes
// a scheduled event (json.RawMessage).
func Handler(ctx context.Context, logicalID string, cfg Config) (any, error) {
	build, ok := registry[logicalID]
	if !ok {
		return nil, fmt.Errorf("app: no function %q", logicalID)
	}
	return build(ctx, cfg)
}

// registry maps template.yaml logical ids to their builders.
var registry = map[string]func(context.Context, Config) (any, error){}

// LogicalIDs lists the functions this binary can build (for tests against template.yaml).
func LogicalIDs() []string {
	ids := make([]string, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	return ids
}
