package jobqueue

import (
	"context"

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
	ID           string `json:"Id"`
	MessageBody  string `json:"MessageBody"`
	DelaySeconds int32  `json:"DelaySeconds,omitempty"`
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

func (c *Client) call(ctx context.Context, op string, in, out any) error {
	return c.Call.JSONCall(ctx, c.Call.RegionalEndpoint("sqs", c.Endpoint), "1.0", "AmazonSQS", op, in, out)
}
