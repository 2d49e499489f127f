package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// Deps are the built pieces a function's handler is made of.
type Deps struct {
	Config   Config
	Log      *slog.Logger
	AWS      aws.Config
	DynamoDB *dynamodb.Client
	Store    *dynamo.Store
	Service  *rollcall.Service

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

// AWSConfig is the SDK configuration, built directly rather than with config.LoadDefaultConfig:
// a Lambda function gets its region and credentials from the environment, and the default
// loader links (and initializes at every cold start) the STS, SSO and sign-in clients that
// only shared-config profiles use (about 1 ms of init, see make bench). A local stage gets
// static credentials so that no AWS account is needed.
func AWSConfig(_ context.Context, c Config) (aws.Config, error) {
	var creds aws.CredentialsProvider
	switch {
	case c.DynamoDBEndpoint != "" || c.SESEndpoint != "" || c.Stage == "local":
		creds = credentials.NewStaticCredentialsProvider("local", "local", "")
	case os.Getenv("AWS_ACCESS_KEY_ID") != "" && os.Getenv("AWS_SECRET_ACCESS_KEY") != "":
		// What the Lambda runtime gives every function (its execution role's session).
		creds = credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"),
			os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	default:
		return aws.Config{}, fmt.Errorf("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset (Lambda sets them)")
	}
	return aws.Config{
		Region:           c.Region,
		Credentials:      aws.NewCredentialsCache(creds),
		HTTPClient:       httpClient(),
		RetryMaxAttempts: 3,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
		},
	}, nil
}

// Build makes the AWS configuration, the store and the service from a configuration: what
// every function has; each kind of function adds its own (internal/app/web, internal/app/mail).
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
	log := c.logger()
	store := dynamo.New(db, c.TableName)
	svc := &rollcall.Service{Store: store, Now: c.Now, Log: log, AdminDailyInvites: c.AdminDailyInvites}
	if c.Stage == "local" && c.SigningSecret != "" {
		svc.Keys = rollcall.NewKeyRing([]byte(c.SigningSecret), []byte(c.SigningSecretPrevious))
		svc.IDs = rollcall.NewIDCodec(c.localIDKey())
	}
	d := &Deps{Config: c, Log: log, AWS: awsCfg, DynamoDB: db, Store: store, Service: svc}
	if c.Stage == "local" && c.SigningSecret != "" {
		d.idKey = c.localIDKey()
	}
	return d, nil
}

// SetIDKey makes key the stable key: public enrollment ids and sealed idempotency answers.
func (d *Deps) SetIDKey(key []byte) {
	d.idKey = key
	d.Service.IDs = rollcall.NewIDCodec(key)
}

// IDKey is the stable key once set (nil before; see internal/app/keys).
func (d *Deps) IDKey() []byte { return d.idKey }
