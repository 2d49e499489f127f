package app

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/stream"
)

// Auditor builds the AuditFunction's worker.
func (d *Deps) Auditor() *stream.Auditor {
	return &stream.Auditor{Store: d.Store, Log: d.Log, Items: dynamo.Images{}}
}

// AuditFunction builds the stream function that records the audit trail.
func AuditFunction(ctx context.Context, c Config) (any, error) {
	d, err := Build(ctx, c)
	if err != nil {
		return nil, err
	}
	a := d.Auditor()
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return a.Handle(ctx, ev)
	}, nil
}
