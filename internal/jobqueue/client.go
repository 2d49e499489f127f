package jobqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/awscall"
)

// Client is the SQS API over the AWS JSON 1.0 protocol (what the SDK speaks to SQS, and
// ElasticMQ locally), without linking the SDK's SQS module (see internal/awscall): the two
// operations the job functions make.
type Client struct {
	Call *awscall.Client // ServiceID "SQS", SigningName "sqs"
	// Endpoint overrides https://sqs.<region>.amazonaws.com (ElasticMQ locally).
	Endpoint string
}

// BatchEntry is one message of a SendMessageBatch call.
type BatchEntry struct {
	ID          string `json:"Id"`
	MessageBody string `json:"MessageBody"`
}

// SendMessageBatchInput is a SendMessageBatch call (the SDK's field names: the authorization
// hook reads QueueUrl).
type SendMessageBatchInput struct {
	QueueUrl string       `json:"QueueUrl"`
	Entries  []BatchEntry `json:"Entries"`
}

// BatchFailure is an entry SQS did not take.
type BatchFailure struct {
	ID          string `json:"Id"`
	Code        string `json:"Code"`
	Message     string `json:"Message"`
	SenderFault bool   `json:"SenderFault"`
}

// SendMessageBatchOutput lists the entries SQS did not take.
type SendMessageBatchOutput struct {
	Failed []BatchFailure `json:"Failed"`
}

// ChangeMessageVisibilityInput is a ChangeMessageVisibility call.
type ChangeMessageVisibilityInput struct {
	QueueUrl          string `json:"QueueUrl"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout int32  `json:"VisibilityTimeout"`
}

var _ API = (*Client)(nil)

// SendMessageBatch sends up to 10 messages.
func (c *Client) SendMessageBatch(ctx context.Context, in *SendMessageBatchInput) (*SendMessageBatchOutput, error) {
	var out SendMessageBatchOutput
	if err := c.call(ctx, "SendMessageBatch", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChangeMessageVisibility sets a received message's visibility timeout.
func (c *Client) ChangeMessageVisibility(ctx context.Context, in *ChangeMessageVisibilityInput) error {
	return c.call(ctx, "ChangeMessageVisibility", in, nil)
}

func (c *Client) endpoint() string {
	if c.Endpoint != "" {
		return strings.TrimRight(c.Endpoint, "/") + "/"
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(c.Call.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://sqs." + c.Call.Region + "." + domain + "/"
}

func (c *Client) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.Call.Do(ctx, awscall.Request{
		Op: op, Input: in, Method: http.MethodPost, URL: c.endpoint(), Body: body,
		Header: http.Header{
			"Content-Type": {"application/x-amz-json-1.0"},
			"X-Amz-Target": {"AmazonSQS." + op},
		},
		DecodeError: decodeError,
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("SQS %s: read answer: %w", op, err)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("SQS %s: answer: %w", op, err)
	}
	return nil
}

// decodeError reads an AWS JSON error: {"__type": "com.amazonaws.sqs#QueueDoesNotExist",
// "message": ...}.
func decodeError(_ int, _ http.Header, body []byte) *awscall.Error {
	var e struct {
		Type        string `json:"__type"`
		Message     string `json:"message"`
		MessageCaps string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e)
	return &awscall.Error{Code: e.Type[strings.LastIndex(e.Type, "#")+1:], Message: e.Message + e.MessageCaps}
}
