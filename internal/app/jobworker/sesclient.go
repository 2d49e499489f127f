package jobworker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// finishedMail sends job_finished mail with SES v2's SendBulkEmail, as the mail functions'
// sender (internal/ses) does, but over awscall instead of the SDK's SES v2 module: the
// worker sends one message a job, and the module's package initialization (its schemas and
// endpoint tables, ~650 KiB of heap) and code were what kept its cold start over budget.
type finishedMail struct {
	call             *awscall.Client // ServiceID "SESv2", SigningName "ses"
	endpoint         string          // "" is https://email.<region>.amazonaws.com
	from             string
	templatePrefix   string
	configurationSet string
}

var _ rollcall.MailSender = (*finishedMail)(nil)

// The SendBulkEmail request and answer, under the API's (and the SDK's) field names.
type (
	sesTemplate struct {
		TemplateName string `json:"TemplateName"`
		TemplateData string `json:"TemplateData"`
	}
	sesEntry struct {
		Destination struct {
			ToAddresses []string `json:"ToAddresses"`
		} `json:"Destination"`
		ReplacementEmailContent struct {
			ReplacementTemplate struct {
				ReplacementTemplateData string `json:"ReplacementTemplateData"`
			} `json:"ReplacementTemplate"`
		} `json:"ReplacementEmailContent"`
	}
	sesTag struct {
		Name  string `json:"Name"`
		Value string `json:"Value"`
	}
	sendBulkEmailInput struct {
		FromEmailAddress string `json:"FromEmailAddress"`
		DefaultContent   struct {
			Template sesTemplate `json:"Template"`
		} `json:"DefaultContent"`
		BulkEmailEntries     []sesEntry `json:"BulkEmailEntries"`
		DefaultEmailTags     []sesTag   `json:"DefaultEmailTags"`
		ConfigurationSetName string     `json:"ConfigurationSetName,omitempty"`
	}
	sendBulkEmailOutput struct {
		BulkEmailEntryResults []struct {
			Status    string `json:"Status"`
			Error     string `json:"Error"`
			MessageID string `json:"MessageId"`
		} `json:"BulkEmailEntryResults"`
	}
)

// Send sends msgs with the template kind in one call per MaxMailDestinations; a result per
// message, classified as internal/ses does (rejected: the address or its data are bad; retry:
// anything else that did not go).
func (m *finishedMail) Send(ctx context.Context, kind string, msgs []rollcall.MailMessage) []rollcall.MailResult {
	out := make([]rollcall.MailResult, len(msgs))
	for lo := 0; lo < len(msgs); lo += rollcall.MaxMailDestinations {
		hi := min(lo+rollcall.MaxMailDestinations, len(msgs))
		m.send(ctx, kind, msgs[lo:hi], out[lo:hi])
	}
	return out
}

func (m *finishedMail) send(ctx context.Context, kind string, msgs []rollcall.MailMessage, out []rollcall.MailResult) {
	failAll := func(outcome rollcall.MailOutcome, err error) {
		for i := range out {
			out[i] = rollcall.MailResult{Outcome: outcome, Status: "ERROR", Err: err}
		}
	}
	in := &sendBulkEmailInput{FromEmailAddress: m.from, ConfigurationSetName: m.configurationSet,
		DefaultEmailTags: []sesTag{{Name: "MailKind", Value: kind}}}
	in.DefaultContent.Template = sesTemplate{TemplateName: m.templatePrefix + kind, TemplateData: "{}"}
	for _, msg := range msgs {
		data, err := json.Marshal(msg.Data)
		if err != nil {
			failAll(rollcall.MailRejected, err)
			return
		}
		var e sesEntry
		e.Destination.ToAddresses = []string{msg.To}
		e.ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData = string(data)
		in.BulkEmailEntries = append(in.BulkEmailEntries, e)
	}
	res, err := m.sendBulkEmail(ctx, in)
	if err != nil {
		failAll(rollcall.MailRetry, fmt.Errorf("SendBulkEmail %s: %w", kind, err))
		return
	}
	if len(res.BulkEmailEntryResults) != len(msgs) {
		failAll(rollcall.MailRetry, fmt.Errorf("SendBulkEmail %s: %d results for %d destinations", kind, len(res.BulkEmailEntryResults), len(msgs)))
		return
	}
	for i, r := range res.BulkEmailEntryResults {
		detail := r.Error
		if detail == "" {
			detail = "no detail"
		}
		switch r.Status {
		case "SUCCESS":
			out[i] = rollcall.MailResult{Outcome: rollcall.MailAccepted, MessageID: r.MessageID, Status: r.Status}
		case "MESSAGE_REJECTED", "INVALID_PARAMETER":
			out[i] = rollcall.MailResult{Outcome: rollcall.MailRejected, Status: r.Status, Err: fmt.Errorf("SES %s: %s", r.Status, detail)}
		default:
			out[i] = rollcall.MailResult{Outcome: rollcall.MailRetry, Status: r.Status, Err: fmt.Errorf("SES %s: %s", r.Status, detail)}
		}
	}
}

func (m *finishedMail) sendBulkEmail(ctx context.Context, in *sendBulkEmailInput) (*sendBulkEmailOutput, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(m.endpoint, "/")
	if base == "" {
		domain := "amazonaws.com"
		if strings.HasPrefix(m.call.Region, "cn-") {
			domain = "amazonaws.com.cn"
		}
		base = "https://email." + m.call.Region + "." + domain
	}
	resp, err := m.call.Do(ctx, awscall.Request{Op: "SendBulkEmail", Input: in, Method: http.MethodPost,
		URL: base + "/v2/email/outbound-bulk-emails", Body: body,
		Header: http.Header{"Content-Type": {"application/json"}}, DecodeError: decodeRESTJSONError})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var out sendBulkEmailOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	return &out, nil
}

// decodeRESTJSONError reads a REST-JSON error: the code in the X-Amzn-ErrorType header
// ("Code:uri") or the body's __type or code, the message in the body.
func decodeRESTJSONError(_ int, h http.Header, body []byte) *awscall.Error {
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
