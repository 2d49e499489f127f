// Package web builds rollcall's HTTP functions: each takes API Gateway HTTP API (payload v2)
// events, verifies the caller's token and serves its routes of template.yaml with the handlers
// of internal/httpapi. Only HTTP functions' binaries link the token verifier and the proxy.
package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/keys"
	"github.com/rollcall/rollcall/internal/auth"
	"github.com/rollcall/rollcall/internal/httpapi"
)

//go:generate go run ./routesgen/cmd -template ../../../template.yaml -out routes_gen.go

// Operations picks a function's operations (keyed by event name in template.yaml) from the API.
type Operations func(*httpapi.API) map[string]http.HandlerFunc

// BulkEnrollFunction builds the bulk enroll function.
func BulkEnrollFunction(ctx context.Context, c app.Config) (any, error) {
	return Function(ctx, c, "BulkEnrollFunction", true, true, (*httpapi.API).BulkOps)
}

// AdminFunction builds the courses and users function.
func AdminFunction(ctx context.Context, c app.Config) (any, error) {
	return Function(ctx, c, "AdminFunction", false, true, (*httpapi.API).AdminOps)
}

// ListEnrollmentsFunction builds the listing function.
func ListEnrollmentsFunction(ctx context.Context, c app.Config) (any, error) {
	return Function(ctx, c, "ListEnrollmentsFunction", true, true, (*httpapi.API).ListOps)
}

// InvitationsFunction builds the invitation page and accept/decline API.
func InvitationsFunction(ctx context.Context, c app.Config) (any, error) {
	return Function(ctx, c, "InvitationsFunction", false, true, (*httpapi.API).InvitationOps)
}

// CheckConfig reports what an HTTP function needs beyond what every function needs: a way to
// verify tokens.
func CheckConfig(c app.Config) error {
	if c.Stage != "local" && (c.JWKSURL == "" || c.JWTIssuer == "" || c.JWTAudience == "") {
		return fmt.Errorf("config: JWT_JWKS_URL, JWT_ISSUER and JWT_AUDIENCE are required outside the local stage")
	}
	return nil
}

// API is the HTTP adapter over d's service, verifying tokens as d's configuration says.
func API(d *app.Deps) (*httpapi.API, error) {
	c := d.Config
	if err := CheckConfig(c); err != nil {
		return nil, err
	}
	verifier, err := auth.FromConfig(c.Stage, c.JWTSecret, c.JWKSURL, c.JWTIssuer, c.JWTAudience)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &httpapi.API{Svc: d.Service, Auth: auth.WithMaxLifetime(verifier, c.JWTMaxLifetime), Log: d.Log,
		BaseURL: c.PublicBaseURL, Idem: d.Store, SignupURL: c.SignupURL, IdemSealKey: d.IDKey()}, nil
}

// Function builds an HTTP function: its operations adapted to API Gateway payload v2 events.
// signs tells whether the function signs or verifies (cursors, invitation links), and so
// reads the signing key ring at start; showsIDs whether it shows or reads enrollment ids or
// keeps Idempotency-Key answers, and so reads the stable key.
func Function(ctx context.Context, c app.Config, logicalID string, signs, showsIDs bool, ops Operations) (any, error) {
	if err := CheckConfig(c); err != nil {
		return nil, err
	}
	d, err := app.Build(ctx, c)
	if err != nil {
		return nil, err
	}
	if signs {
		if _, err := keys.Signing(ctx, d); err != nil {
			return nil, err
		}
	}
	if showsIDs {
		if err := keys.Stable(ctx, d); err != nil {
			return nil, err
		}
	}
	d.Service.Metrics = app.EMF(logicalID)
	api, err := API(d)
	if err != nil {
		return nil, err
	}
	h, err := Handler(d, logicalID, ops(api))
	if err != nil {
		return nil, err
	}
	adapter := httpadapter.NewV2(h)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req.RawPath = escapedPath(req)
		return adapter.ProxyWithContext(ctx, req)
	}, nil
}

// Handler is the plain net/http handler of a function (tests serve it directly): its routes
// of template.yaml (routes_gen.go) with their operations.
func Handler(d *app.Deps, logicalID string, ops map[string]http.HandlerFunc) (http.Handler, error) {
	routes := Routes(logicalID)
	if routes == nil {
		return nil, fmt.Errorf("template.yaml has no HTTP function %s (run go generate ./internal/app/web)", logicalID)
	}
	return httpapi.Handler(d.Log, routes, ops)
}

// escapedPath rebuilds the request path from the route key and the (decoded) path
// parameters, each escaped as one segment: API Gateway has already chosen the route, and
// rawPath is no guide to it. HTTP APIs hand rawPath over decoded, so a legacy course key
// (ORG/NUMBER/RUN, sent as %2F) arrives as three segments and would no longer match its
// single-segment route; a decoded control character would not parse as a URL (a 502); and
// /x/ arrives as itself on the route /x.
func escapedPath(req events.APIGatewayV2HTTPRequest) string {
	_, route, ok := strings.Cut(req.RouteKey, " ")
	if !ok || !strings.HasPrefix(route, "/") {
		return req.RawPath
	}
	if !strings.Contains(route, "{") {
		return route
	}
	segs := strings.Split(route, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			v, ok := req.PathParameters[strings.Trim(seg, "{}+")]
			if !ok {
				return req.RawPath
			}
			segs[i] = url.PathEscape(v)
		}
	}
	return strings.Join(segs, "/")
}
