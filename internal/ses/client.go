package ses

import (
	"context"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/rollcall/rollcall/internal/awscall"
)

// Client calls SES v2's SendBulkEmail as the SDK's sesv2 client does (REST-JSON over HTTPS,
// signed with Signature Version 4 by the SDK's own signer, through internal/awscall as the
// SQS, S3 and Secrets Manager calls are) without linking the SDK's sesv2 module: its package
// initialization (1,900 generated schemas and the endpoint tables) costs the mail functions
// about 1.2 ms of init and 1.2 MiB of peak memory at every cold start, which put them over the
// cold-start budget (docs/api.md#performance-budgets). One operation is all the functions send.
type Client struct {
	API *awscall.Client
	// Endpoint overrides https://email.<region>.amazonaws.com (the emulator locally; also
	// read from AWS_ENDPOINT_URL_SESV2, as the SDK does).
	Endpoint string
}

// NewClient is the client for a function's AWS configuration; endpoint "" means SES's own,
// authorize is the function's authorization hook (the local IAM check; nil in AWS).
func NewClient(cfg aws.Config, endpoint string, authorize func(*middleware.Stack) error) *Client {
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_SESV2")
	}
	return &Client{API: awscall.New(cfg, "SESv2", "ses", authorize), Endpoint: endpoint}
}

// The operation's input and output: the SDK's member names, which are also SES's JSON names.
// The authorization hook sees the input as it would see the SDK's SendBulkEmailInput.
type (
	SendBulkEmailInput struct {
		FromEmailAddress     string           `json:"FromEmailAddress,omitempty"`
		ConfigurationSetName string           `json:"ConfigurationSetName,omitempty"`
		DefaultContent       BulkEmailContent `json:"DefaultContent"`
		BulkEmailEntries     []BulkEmailEntry `json:"BulkEmailEntries"`
		DefaultEmailTags     []MessageTag     `json:"DefaultEmailTags,omitempty"`
	}
	BulkEmailContent struct {
		Template Template `json:"Template"`
	}
	Template struct {
		TemplateName string `json:"TemplateName"`
		TemplateData string `json:"TemplateData,omitempty"`
	}
	BulkEmailEntry struct {
		Destination             Destination             `json:"Destination"`
		ReplacementEmailContent ReplacementEmailContent `json:"ReplacementEmailContent"`
	}
	Destination struct {
		ToAddresses []string `json:"ToAddresses"`
	}
	ReplacementEmailContent struct {
		ReplacementTemplate ReplacementTemplate `json:"ReplacementTemplate"`
	}
	ReplacementTemplate struct {
		ReplacementTemplateData string `json:"ReplacementTemplateData"`
	}
	MessageTag struct {
		Name  string `json:"Name"`
		Value string `json:"Value"`
	}

	SendBulkEmailOutput struct {
		BulkEmailEntryResults []BulkEmailEntryResult `json:"BulkEmailEntryResults"`
	}
	BulkEmailEntryResult struct {
		Status    string `json:"Status"`
		MessageID string `json:"MessageId"`
		Error     string `json:"Error"`
	}
)

// The entry statuses SES answers (BulkEmailStatus).
const (
	StatusSuccess          = "SUCCESS"
	StatusMessageRejected  = "MESSAGE_REJECTED"
	StatusInvalidParameter = "INVALID_PARAMETER"
	StatusAccountThrottled = "ACCOUNT_THROTTLED"
	StatusFailed           = "FAILED"
)

// SendBulkEmail sends one call; awscall retries throttling (TooManyRequestsException), 5xx
// answers and network failures up to 3 attempts, as the SDK's standard retryer would. Other
// service errors are *awscall.Error with SES's error code.
func (c *Client) SendBulkEmail(ctx context.Context, in *SendBulkEmailInput) (*SendBulkEmailOutput, error) {
	var out SendBulkEmailOutput
	url := c.API.RegionalEndpoint("email", c.Endpoint) + "v2/email/outbound-bulk-emails"
	if err := c.API.RESTJSONCall(ctx, http.MethodPost, url, "SendBulkEmail", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
