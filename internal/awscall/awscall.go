// Package awscall signs and sends the few calls the functions make to AWS services whose SDK
// modules they do not link (SQS, S3, Secrets Manager). Linking a service module costs every cold start its
// package initialization (the service's schemas and endpoint tables: 0.3-0.5 ms and
// 150-250 KiB of heap each, see make bench) and its code's pages; a job function makes two or
// three kinds of call on each service. Requests are signed with the SDK's own Signature
// Version 4 signer, and the function's authorization hook (the local IAM check of
// template.yaml's policies, see internal/localiam) sees each call with the operation name and
// input fields the SDK would give it, so a call AWS would refuse fails locally too.
package awscall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/rollcall/rollcall/internal/retry"
)

// Client calls one service in one region.
type Client struct {
	// ServiceID is the SDK's service id ("SQS", "S3"): what the authorization hook maps.
	ServiceID string
	// SigningName is the service's name in signatures ("sqs", "s3").
	SigningName string
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        *http.Client // nil: http.DefaultClient
	// Authorize is an SDK API option (aws.Config.APIOptions) that adds an Initialize
	// middleware deciding each call before it is sent; nil in AWS.
	Authorize func(*middleware.Stack) error
	// S3 signs the path as given (S3 does not escape it twice) and presigns.
	S3 bool
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// New is a client for cfg's region, credentials and HTTP client.
func New(cfg aws.Config, serviceID, signingName string, authorize func(*middleware.Stack) error) *Client {
	c := &Client{ServiceID: serviceID, SigningName: signingName, Region: cfg.Region, Credentials: cfg.Credentials, Authorize: authorize}
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

// Error is a service's error answer. It is a smithy.APIError, as the SDK's errors are.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("api error %s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}
func (e *Error) ErrorCode() string    { return e.Code }
func (e *Error) ErrorMessage() string { return e.Message }
func (e *Error) ErrorFault() smithy.ErrorFault {
	if e.Status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

var _ smithy.APIError = (*Error)(nil)

// Retryable reports whether sending the call again may succeed (throttling, a 5xx answer).
func (e *Error) Retryable() bool {
	switch e.Code {
	case "Throttling", "ThrottlingException", "RequestThrottled", "RequestLimitExceeded", "SlowDown",
		"RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException":
		return true
	}
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// Authorized runs the authorization hook on op with input (a struct with the SDK input's
// fields that the hook reads, such as QueueUrl or Bucket and Key): nil when allowed or when
// there is no hook.
func (c *Client) Authorized(ctx context.Context, op string, input any) error {
	if c.Authorize == nil {
		return nil
	}
	st := middleware.NewStack(op, smithyhttp.NewStackRequest)
	if err := c.Authorize(st); err != nil {
		return err
	}
	ctx = middleware.ClearStackValues(ctx)
	ctx = awsmiddleware.SetServiceID(ctx, c.ServiceID)
	ctx = awsmiddleware.SetOperationName(ctx, op)
	ctx = awsmiddleware.SetRegion(ctx, c.Region)
	_, _, err := st.Initialize.HandleMiddleware(ctx, input, middleware.HandlerFunc(
		func(context.Context, any) (any, middleware.Metadata, error) { return nil, middleware.Metadata{}, nil }))
	return err
}

// Request is one call: build makes its HTTP request afresh for every attempt.
type Request struct {
	Op    string
	Input any // what the authorization hook sees
	// Method, URL (escaped) and Body; Header is copied onto the request.
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// DecodeError reads a service error from a non-2xx answer's body; nil leaves Code empty.
	DecodeError func(status int, header http.Header, body []byte) *Error
}

// Do authorizes, signs and sends r, trying up to 3 times when the network fails, the call is
// throttled or the service answers 5xx (as the SDK's standard retryer does). A 2xx answer is
// returned with its body unread (the caller closes it); any other answer is an *Error.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	if err := c.Authorized(ctx, r.Op, r.Input); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			if err := retry.Pause(ctx, attempt-1, 100*time.Millisecond, time.Second); err != nil {
				return nil, err
			}
		}
		resp, retry, err := c.send(ctx, r)
		if err == nil || !retry {
			return resp, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func (c *Client) send(ctx context.Context, r Request) (*http.Response, bool, error) {
	creds, err := c.retrieve(ctx)
	if err != nil {
		return nil, false, err
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", c.ServiceID, r.Op, err)
	}
	if r.Body == nil {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	sum := sha256.Sum256(r.Body)
	hash := hex.EncodeToString(sum[:])
	if c.S3 {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	if err := c.signer().SignHTTP(ctx, creds, req, hash, c.SigningName, c.Region, c.now()); err != nil {
		return nil, false, fmt.Errorf("%s %s: sign: %w", c.ServiceID, r.Op, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, fmt.Errorf("%s %s: %w", c.ServiceID, r.Op, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, false, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e *Error
	if r.DecodeError != nil {
		e = r.DecodeError(resp.StatusCode, resp.Header, body)
	}
	if e == nil {
		e = &Error{}
	}
	e.Status = resp.StatusCode
	if e.Code == "" {
		e.Code = strconv.Itoa(resp.StatusCode)
	}
	return nil, e.Retryable(), fmt.Errorf("%s %s: %w", c.ServiceID, r.Op, e)
}

// Presign authorizes op on input and returns rawURL presigned for method for expires (the
// payload is not signed), as the SDK's presign clients do.
func (c *Client) Presign(ctx context.Context, op string, input any, method, rawURL string, expires time.Duration) (string, error) {
	if err := c.Authorized(ctx, op, input); err != nil {
		return "", err
	}
	creds, err := c.retrieve(ctx)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", c.ServiceID, op, err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	req.URL.RawQuery = q.Encode()
	u, _, err := c.signer().PresignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", c.SigningName, c.Region, c.now())
	if err != nil {
		return "", fmt.Errorf("%s %s: presign: %w", c.ServiceID, op, err)
	}
	return u, nil
}

func (c *Client) retrieve(ctx context.Context) (aws.Credentials, error) {
	if c.Credentials == nil || c.Region == "" {
		return aws.Credentials{}, fmt.Errorf("%s: no credentials or region", c.ServiceID)
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%s: credentials: %w", c.ServiceID, err)
	}
	return creds, nil
}

func (c *Client) signer() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = c.S3 })
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}
