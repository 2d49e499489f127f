package web

import (
	"context"
	"maps"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/keys"
	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// UserApiFunction builds the user side of Open edX's user_api: retirement, preferences and
// email opt-in (docs/api.md#user-side). It reads the stable key: retirement pseudonyms and
// ids are keyed with it.
func UserApiFunction(ctx context.Context, c app.Config) (any, error) {
	if err := CheckConfig(c); err != nil {
		return nil, err
	}
	d, err := app.Build(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := keys.Stable(ctx, d); err != nil {
		return nil, err
	}
	d.Service.Metrics = app.EMF("UserApiFunction")
	api, err := API(d)
	if err != nil {
		return nil, err
	}
	h, err := Handler(d, "UserApiFunction", UserAPIOps(d, api))
	if err != nil {
		return nil, err
	}
	adapter := httpadapter.NewV2(h)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req.RawPath = escapedPath(req)
		return adapter.ProxyWithContext(ctx, req)
	}, nil
}

// Retirements are the retirement use cases over d's store. The pseudonyms and retirement ids
// are keyed with the stable id key, so they never change for one account. Other stores that
// hold personal data join by appending to Participants.
func Retirements(d *app.Deps) *rollcall.Retirements {
	return &rollcall.Retirements{Svc: d.Service, Store: d.Store, Salt: d.IDKey(),
		Participants: []rollcall.RetirementParticipant{d.Store}}
}

// UserAPIOps are UserApiFunction's operations.
func UserAPIOps(d *app.Deps, api *httpapi.API) map[string]http.HandlerFunc {
	ops := api.RetirementOps(Retirements(d))
	maps.Copy(ops, api.PreferenceOps(&rollcall.Preferences{Svc: d.Service, Store: d.Store}))
	maps.Copy(ops, api.OptInOps(&rollcall.OptIns{Svc: d.Service, Store: d.Store}))
	return ops
}
