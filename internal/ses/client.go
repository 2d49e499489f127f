package ses

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/awscall"
)

// Client is SES v2's SendBulkEmail over REST-JSON (what the SDK sends, and what the local
// emulator takes), without the SDK's SES v2 module: its package initialization (the
// service's schemas and endpoint tables, ~650 KiB of heap) and its code were a fifth of the
// mail functions' cold-start memory for the one operation they call (make bench). The SDK's
// Signature Version 4 signer signs it, and the function's authorization hook (the local IAM
// check) sees it with the SDK's service id, operation and field names (see internal/awscall).
type Client struct {
	Call *awscall.Client // ServiceID "SESv2", SigningName "ses"
	// Endpoint overrides https://email.<region>.amazonaws.com (the emulator locally).
	Endpoint string
}

// NewClient is the SES v2 client on call (its service names are set here).
func NewClient(call *awscall.Client, endpoint string) *Client {
	call.ServiceID, call.SigningName, call.S3 = "SESv2", "ses", false
	return &Client{Call: call, Endpoint: endpoint}
}

var _ API = (*Client)(nil)

// The SendBulkEmail request and answer, under the API's (and the SDK's) field names.
type (
	Template struct {
		TemplateName string `json:"TemplateName"`
		TemplateData string `json:"TemplateData"`
	}
	ReplacementTemplate struct {
		ReplacementTemplateData string `json:"ReplacementTemplateData"`
	}
	ReplacementEmailContent struct {
		ReplacementTemplate ReplacementTemplate `json:"ReplacementTemplate"`
	}
	Destination struct {
		ToAddresses []string `json:"ToAddresses"`
	}
	BulkEmailEntry struct {
		Destination             Destination             `json:"Destination"`
		ReplacementEmailContent ReplacementEmailContent `json:"ReplacementEmailContent"`
	}
	BulkEmailContent struct {
		Template Template `json:"Template"`
	}
	MessageTag struct {
		Name  string `json:"Name"`
		Value string `json:"Value"`
	}
	SendBulkEmailInput struct {
		FromEmailAddress     string           `json:"FromEmailAddress"`
		DefaultContent       BulkEmailContent `json:"DefaultContent"`
		BulkEmailEntries     []BulkEmailEntry `json:"BulkEmailEntries"`
		DefaultEmailTags     []MessageTag     `json:"DefaultEmailTags,omitempty"`
		ConfigurationSetName string           `json:"ConfigurationSetName,omitempty"`
	}
	BulkEmailEntryResult struct {
		Status    string `json:"Status"` // SUCCESS, MESSAGE_REJECTED, ACCOUNT_THROTTLED, ...
		Error     string `json:"Error"`
		MessageID string `json:"MessageId"`
	}
	SendBulkEmailOutput struct {
		BulkEmailEntryResults []BulkEmailEntryResult `json:"BulkEmailEntryResults"`
	}
)

// SendBulkEmail sends one templated bulk call.
func (c *Client) SendBulkEmail(ctx context.Context, in *SendBulkEmailInput) (*SendBulkEmailOutput, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(c.Endpoint, "/")
	if base == "" {
		domain := "amazonaws.com"
		if strings.HasPrefix(c.Call.Region, "cn-") {
			domain = "amazonaws.com.cn"
		}
		base = "https://email." + c.Call.Region + "." + domain
	}
	resp, err := c.Call.Do(ctx, awscall.Request{Op: "SendBulkEmail", Input: in, Method: http.MethodPost,
		URL: base + "/v2/email/outbound-bulk-emails", Body: body,
		Header: http.Header{"Content-Type": {"application/json"}}, DecodeError: decodeError})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("SESv2 SendBulkEmail: read answer: %w", err)
	}
	var out SendBulkEmailOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("SESv2 SendBulkEmail: answer: %w", err)
	}
	return &out, nil
}

// decodeError reads a REST-JSON error: the code in the X-Amzn-ErrorType header
// ("Code:uri") or the body's __type or code, the message in the body.
func decodeError(_ int, h http.Header, body []byte) *awscall.Error {
	var e struct {
		Type        string `json:"__type"`
		Code        string `json:"code"`
		Message     string `json:"message"`
		MessageCaps string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e)
	code, _, _ := strings.Cut(h.Get("X-Amzn-Errortype"), ":")
	if code == "" {
		code = e.Type
	}
	if code == "" {
		code = e.Code
	}
	return &awscall.Error{Code: code[strings.LastIndex(code, "#")+1:], Message: e.Message + e.MessageCaps}
}
