package awscall

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The AWS JSON protocol (SQS, Secrets Manager): a POST of the input as JSON to the service's
// regional endpoint, the operation in X-Amz-Target, errors as {"__type", "message"}.

// RegionalEndpoint is https://<prefix>.<region>.<domain>/, or override (a local emulator) when set.
func (c *Client) RegionalEndpoint(prefix, override string) string {
	if override != "" {
		return strings.TrimRight(override, "/") + "/"
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(c.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://" + prefix + "." + c.Region + "." + domain + "/"
}

// JSONCall makes one AWS JSON call: version is the protocol's ("1.0", "1.1"), target the
// X-Amz-Target prefix ("AmazonSQS", "secretsmanager"). out may be nil; in is what the
// authorization hook sees. Service errors are *Error, with the __type's last part as Code.
func (c *Client) JSONCall(ctx context.Context, url, version, target, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.Do(ctx, Request{
		Op: op, Input: in, Method: http.MethodPost, URL: url, Body: body,
		Header: http.Header{
			"Content-Type": {"application/x-amz-json-" + version},
			"X-Amz-Target": {target + "." + op},
		},
		DecodeError: DecodeJSONError,
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", c.ServiceID, op, err)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer: %w", c.ServiceID, op, err)
	}
	return nil
}

// DecodeJSONError reads an AWS JSON error: {"__type": "com.amazonaws.sqs#QueueDoesNotExist",
// "message": ...} (some services spell it "Message").
func DecodeJSONError(_ int, _ http.Header, body []byte) *Error {
	var e struct {
		Type        string `json:"__type"`
		Message     string `json:"message"`
		MessageCaps string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e)
	return &Error{Code: e.Type[strings.LastIndex(e.Type, "#")+1:], Message: e.Message + e.MessageCaps}
}
