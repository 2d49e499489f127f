package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rollcall/rollcall/internal/awscall"
)

// HTTPClient calls Secrets Manager's GetSecretValue as the SDK does (AWS JSON 1.1 over HTTPS,
// signed with Signature Version 4 by the SDK's own signer, through internal/awscall as the SQS
// and S3 calls are) without linking the SDK's Secrets Manager module: its package initialization (the service's schemas and endpoint tables)
// costs every function that reads a key about 0.6 ms of cold start, a quarter of the budget
// (make bench). One operation on one endpoint is all the functions need.
type HTTPClient struct {
	API *awscall.Client
	// Endpoint overrides https://secretsmanager.<region>.amazonaws.com (also read from
	// AWS_ENDPOINT_URL_SECRETS_MANAGER, as the SDK does).
	Endpoint string
}

// NewHTTPClient is the client for a function's AWS configuration.
func NewHTTPClient(cfg aws.Config) *HTTPClient {
	return &HTTPClient{API: awscall.New(cfg, "Secrets Manager", "secretsmanager", nil),
		Endpoint: os.Getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")}
}

// getSecretValueInput is the operation's input (the fields the SDK's input has).
type getSecretValueInput struct {
	SecretId     string `json:"SecretId"`
	VersionStage string `json:"VersionStage"`
}

// GetSecretValue reads one staged version; awscall retries throttling, 5xx answers and
// network failures up to 3 attempts, as the SDK's standard retryer would.
func (c *HTTPClient) GetSecretValue(ctx context.Context, secretID, versionStage string) (Value, error) {
	var out struct {
		VersionID    string `json:"VersionId"`
		SecretString string `json:"SecretString"`
	}
	err := c.API.JSONCall(ctx, c.endpoint(), "1.1", "secretsmanager", "GetSecretValue",
		&getSecretValueInput{SecretId: secretID, VersionStage: versionStage}, &out)
	var ae *awscall.Error
	if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
		return Value{}, fmt.Errorf("%w: %s", ErrNotFound, ae.Message)
	}
	if err != nil {
		return Value{}, fmt.Errorf("secrets manager: %w", err)
	}
	return Value{VersionID: out.VersionID, SecretString: out.SecretString}, nil
}

func (c *HTTPClient) endpoint() string { return c.API.RegionalEndpoint("secretsmanager", c.Endpoint) }
