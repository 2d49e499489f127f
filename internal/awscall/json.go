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
// regional endpoint, the operation in X-Amz-Target, errors as {"__type", "message"}. And the
// REST-JSON protocol (SES v2): the input as JSON to the operation's own path, the error code
// in the X-Amzn-ErrorType header.

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
	return c.jsonCall(ctx, Request{Op: op, Method: http.MethodPost, URL: url,
		Header: http.Header{
			"Content-Type": {"application/x-amz-json-" + version},
			"X-Amz-Target": {target + "." + op},
		},
		DecodeError: DecodeJSONError,
	}, in, out)
}

// RESTJSONCall makes one REST-JSON call: in, as JSON, to method and url (the operation's
// path). out may be nil; in is what the authorization hook sees. Service errors are *Error,
// with the code of the X-Amzn-ErrorType header (else of the body).
func (c *Client) RESTJSONCall(ctx context.Context, method, url, op string, in, out any) error {
	return c.jsonCall(ctx, Request{Op: op, Method: method, URL: url,
		Header:      http.Header{"Content-Type": {"application/json"}},
		DecodeError: DecodeRESTJSONError,
	}, in, out)
}

// jsonCall sends r with in as its JSON body and reads a 2xx answer's JSON into out.
func (c *Client) jsonCall(ctx context.Context, r Request, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	r.Input, r.Body = in, body
	resp, err := c.Do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", c.ServiceID, r.Op, err)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer: %w", c.ServiceID, r.Op, err)
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

// DecodeRESTJSONError reads a REST-JSON error as the SDK's restjson1 protocol does: the code
// in the X-Amzn-ErrorType header ("TooManyRequestsException:http://..."), else the body's
// __type or code; the message in the body.
func DecodeRESTJSONError(status int, h http.Header, body []byte) *Error {
	e := DecodeJSONError(status, h, body)
	if t := h.Get("X-Amzn-Errortype"); t != "" {
		e.Code, _, _ = strings.Cut(t, ":")
	}
	if e.Code == "" {
		var b struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(body, &b)
		e.Code = b.Code
	}
	return e
}
