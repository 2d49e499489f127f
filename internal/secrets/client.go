package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/rollcall/rollcall/internal/retry"
)

// HTTPClient calls Secrets Manager's GetSecretValue as the SDK does (AWS JSON 1.1 over HTTPS,
// signed with Signature Version 4 by the SDK's own signer) without linking the SDK's Secrets
// Manager module: its package initialization (the service's schemas and endpoint tables)
// costs every function that reads a key about 0.6 ms of cold start, a quarter of the budget
// (make bench). One operation on one endpoint is all the functions need.
type HTTPClient struct {
	Credentials aws.CredentialsProvider
	Region      string
	HTTP        *http.Client // nil: http.DefaultClient
	// Endpoint overrides https://secretsmanager.<region>.amazonaws.com (also read from
	// AWS_ENDPOINT_URL_SECRETS_MANAGER, as the SDK does).
	Endpoint string
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// NewHTTPClient is the client for a function's AWS configuration.
func NewHTTPClient(cfg aws.Config) *HTTPClient {
	c := &HTTPClient{Credentials: cfg.Credentials, Region: cfg.Region, Endpoint: os.Getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")}
	if hc, ok := cfg.HTTPClient.(*http.Client); ok {
		c.HTTP = hc
	} else if cfg.HTTPClient != nil {
		c.HTTP = &http.Client{Transport: doerTransport{cfg.HTTPClient}}
	}
	return c
}

// doerTransport lets an aws.HTTPClient (a Do method) serve as an http.Client's transport.
type doerTransport struct{ d aws.HTTPClient }

func (t doerTransport) RoundTrip(r *http.Request) (*http.Response, error) { return t.d.Do(r) }

// apiError is Secrets Manager's error body.
type apiError struct {
	Type        string `json:"__type"`
	Message     string `json:"message"`
	MessageCaps string `json:"Message"`
}

// GetSecretValue reads one staged version, retrying throttling, 5xx answers and network
// failures up to 3 attempts, as the SDK's standard retryer would.
func (c *HTTPClient) GetSecretValue(ctx context.Context, secretID, versionStage string) (Value, error) {
	body, _ := json.Marshal(map[string]string{"SecretId": secretID, "VersionStage": versionStage})
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			if err := retry.Pause(ctx, attempt, 100*time.Millisecond, time.Second); err != nil {
				return Value{}, err
			}
		}
		v, retry, err := c.call(ctx, body)
		if err == nil || !retry {
			return v, err
		}
		lastErr = err
	}
	return Value{}, lastErr
}

func (c *HTTPClient) endpoint() string {
	if c.Endpoint != "" {
		return strings.TrimRight(c.Endpoint, "/") + "/"
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(c.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://secretsmanager." + c.Region + "." + domain + "/"
}

func (c *HTTPClient) call(ctx context.Context, body []byte) (v Value, retry bool, err error) {
	if c.Credentials == nil || c.Region == "" {
		return Value{}, false, errors.New("secrets manager: no credentials or region")
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Value{}, false, fmt.Errorf("secrets manager: credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(), bytes.NewReader(body))
	if err != nil {
		return Value{}, false, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", c.Region, now().UTC()); err != nil {
		return Value{}, false, fmt.Errorf("secrets manager: sign: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Value{}, ctx.Err() == nil, fmt.Errorf("secrets manager: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Value{}, true, fmt.Errorf("secrets manager: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		_ = json.Unmarshal(data, &e)
		typ := e.Type[strings.LastIndex(e.Type, "#")+1:]
		msg := e.Message + e.MessageCaps
		if typ == "ResourceNotFoundException" {
			return Value{}, false, fmt.Errorf("%w: %s", ErrNotFound, msg)
		}
		retry = resp.StatusCode >= 500 || typ == "ThrottlingException" || typ == "RequestLimitExceeded" || resp.StatusCode == http.StatusTooManyRequests
		return Value{}, retry, fmt.Errorf("secrets manager: %d %s: %s", resp.StatusCode, typ, msg)
	}
	var out struct {
		VersionID    string `json:"VersionId"`
		SecretString string `json:"SecretString"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return Value{}, false, fmt.Errorf("secrets manager: answer: %w", err)
	}
	return Value{VersionID: out.VersionID, SecretString: out.SecretString}, false, nil
}
