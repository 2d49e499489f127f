package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	sam "github.com/rollcall/rollcall"
	"github.com/rollcall/rollcall/internal/auth"
	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/secrets"
)

// Deps are the built pieces a function's handler is made of.
type Deps struct {
	Config   Config
	Log      *slog.Logger
	AWS      aws.Config
	DynamoDB *dynamodb.Client
	Store    *dynamo.Store
	Service  *rollcall.Service
	Auth     auth.Verifier

	idKey []byte // the stable key (see LoadIDKey)
}

// Logger is the JSON logger Lambda users expect (CloudWatch parses it).
// Every line logged with a context carries the Lambda request id.
func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return slog.New(withRequestIDs(c.Logger.Handler()))
	}
	return slog.New(withRequestIDs(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

// httpClient is shared by the AWS clients: keep-alive connections sized for the store's
// parallel batches, and bounded timeouts so an outage turns into a 503 quickly.
// (The SDK's buildable client, so that a custom CA bundle from the environment still applies.)
func httpClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(10 * time.Second).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 2 * time.Second }).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 128
			t.MaxIdleConnsPerHost = 64
			t.IdleConnTimeout = 90 * time.Second
		})
}

// AWSConfig loads the SDK configuration; a local stage gets static credentials so that no
// AWS account is needed.
func AWSConfig(ctx context.Context, c Config) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(c.Region),
		awsconfig.WithHTTPClient(httpClient()),
		awsconfig.WithRetryMaxAttempts(3),
	}
	if c.DynamoDBEndpoint != "" || c.SESEndpoint != "" || c.Stage == "local" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// Build makes the store, the service and the verifier from a configuration.
func Build(ctx context.Context, c Config) (*Deps, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	awsCfg, err := AWSConfig(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if c.Authorize != nil {
		awsCfg.APIOptions = append(awsCfg.APIOptions, c.Authorize)
	}
	db := dynamodb.NewFromConfig(awsCfg, dynamo.MarkThrottling, func(o *dynamodb.Options) {
		if c.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoDBEndpoint)
			// DynamoDB Local's CRC32 header does not always match its body.
			o.DisableValidateResponseChecksum = true
		}
	})
	verifier, err := auth.FromConfig(c.Stage, c.JWTSecret, c.JWKSURL, c.JWTIssuer, c.JWTAudience)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	verifier = auth.WithMaxLifetime(verifier, c.JWTMaxLifetime)
	log := c.logger()
	store := dynamo.New(db, c.TableName)
	svc := &rollcall.Service{Store: store, Now: c.Now, Log: log, AdminDailyInvites: c.AdminDailyInvites}
	if c.Stage == "local" && c.SigningSecret != "" {
		svc.Keys = rollcall.NewKeyRing([]byte(c.SigningSecret), []byte(c.SigningSecretPrevious))
		svc.IDs = rollcall.NewIDCodec(c.localIDKey())
	}
	d := &Deps{Config: c, Log: log, AWS: awsCfg, DynamoDB: db, Store: store, Service: svc, Auth: verifier}
	if c.Stage == "local" && c.SigningSecret != "" {
		d.idKey = c.localIDKey()
	}
	return d, nil
}

// LoadIDKey reads the stable key (public enrollment ids, sealed idempotency answers) once per
// cold start, for the functions that show enrollment ids or keep answers: from Secrets Manager
// when ID_KEY_SECRET_ARN is set, else, on the local stage, the signing secret.
func (d *Deps) LoadIDKey(ctx context.Context) error {
	if len(d.idKey) > 0 {
		return nil
	}
	if d.Config.IDKeySecretARN == "" {
		return fmt.Errorf("config: ID_KEY_SECRET_ARN is required (SIGNING_SECRET on the local stage)")
	}
	key, err := secrets.LoadStable(ctx, secretsmanager.NewFromConfig(d.AWS), d.Config.IDKeySecretARN)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d.idKey = key
	d.Service.IDs = rollcall.NewIDCodec(key)
	return nil
}

// LoadKeys reads the signing key ring into the service, once per cold start, for the
// functions that sign or verify (template.yaml gives only them SIGNING_SECRET_ARN and the
// right to read it): from Secrets Manager when SIGNING_SECRET_ARN is set, else, on the local
// stage, from SIGNING_SECRET (and SIGNING_SECRET_PREVIOUS).
func (d *Deps) LoadKeys(ctx context.Context) (rollcall.KeyRing, error) {
	c := d.Config
	if ring := d.Service.Keys; len(ring.Current.Secret) > 0 {
		return ring, nil
	}
	var ring rollcall.KeyRing
	switch {
	case c.SigningSecretARN != "":
		sm := secretsmanager.NewFromConfig(d.AWS)
		r, err := secrets.Load(ctx, sm, c.SigningSecretARN)
		if err != nil {
			return ring, fmt.Errorf("config: %w", err)
		}
		ring = r
	default:
		return ring, fmt.Errorf("config: SIGNING_SECRET_ARN is required (SIGNING_SECRET on the local stage)")
	}
	d.Service.Keys = ring
	return ring, nil
}

// SES is the SES v2 client (the emulator's endpoint locally).
func (d *Deps) SES() *sesv2.Client {
	return sesv2.NewFromConfig(d.AWS, func(o *sesv2.Options) {
		if d.Config.SESEndpoint != "" {
			o.BaseEndpoint = aws.String(d.Config.SESEndpoint)
		}
	})
}

// API is the HTTP adapter over the service.
func (d *Deps) API() *httpapi.API {
	return &httpapi.API{Svc: d.Service, Auth: d.Auth, Log: d.Log, BaseURL: d.Config.PublicBaseURL, Idem: d.Store, SignupURL: d.Config.SignupURL,
		IdemSealKey: d.idKey}
}

var (
	tplOnce sync.Once
	tpl     *samtemplate.Template
	tplErr  error
)

// Template is the embedded template.yaml, parsed once.
func Template() (*samtemplate.Template, error) {
	tplOnce.Do(func() { tpl, tplErr = samtemplate.Parse(sam.Template) })
	return tpl, tplErr
}

// Routes are a function's HttpApi events in template.yaml.
func Routes(logicalID string) ([]httpapi.Route, error) {
	t, err := Template()
	if err != nil {
		return nil, err
	}
	f, ok := t.Function(logicalID)
	if !ok {
		return nil, fmt.Errorf("template.yaml has no function %s", logicalID)
	}
	routes := make([]httpapi.Route, 0, len(f.Routes))
	for _, r := range f.Routes {
		routes = append(routes, httpapi.Route{Name: r.EventName, Method: r.Method, Path: r.Path})
	}
	return routes, nil
}

// HTTPFunction adapts a function's operations to API Gateway payload v2 events.
// signs tells whether the function signs or verifies (cursors, invitation links), and so
// reads the signing key ring at start; showsIDs whether it shows or reads enrollment ids or
// keeps Idempotency-Key answers, and so reads the stable key.
func HTTPFunction(logicalID string, signs, showsIDs bool, ops func(*Deps) map[string]http.HandlerFunc) func(context.Context, Config) (any, error) {
	return func(ctx context.Context, c Config) (any, error) {
		d, err := Build(ctx, c)
		if err != nil {
			return nil, err
		}
		if signs {
			if _, err := d.LoadKeys(ctx); err != nil {
				return nil, err
			}
		}
		if showsIDs {
			if err := d.LoadIDKey(ctx); err != nil {
				return nil, err
			}
		}
		d.Service.Metrics = emfMetrics{function: logicalID}
		h, err := d.HTTPHandler(logicalID, ops(d))
		if err != nil {
			return nil, err
		}
		adapter := httpadapter.NewV2(h)
		return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			req.RawPath = escapedPath(req)
			return adapter.ProxyWithContext(ctx, req)
		}, nil
	}
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

// HTTPHandler is the plain net/http handler of a function (tests serve it directly).
func (d *Deps) HTTPHandler(logicalID string, ops map[string]http.HandlerFunc) (http.Handler, error) {
	routes, err := Routes(logicalID)
	if err != nil {
		return nil, err
	}
	return httpapi.Handler(d.Log, routes, ops)
}

func init() {
	registry["BulkEnrollFunction"] = HTTPFunction("BulkEnrollFunction", true, true, func(d *Deps) map[string]http.HandlerFunc { return d.API().BulkOps() })
	registry["AdminFunction"] = HTTPFunction("AdminFunction", false, true, func(d *Deps) map[string]http.HandlerFunc { return d.API().AdminOps() })
}
