package awscall_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

type queueInput struct{ QueueUrl string }

func client(t *testing.T, authorize *localiam.Policy) *awscall.Client {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "TOKEN")}
	c := awscall.New(cfg, "SQS", "sqs", nil)
	if authorize != nil {
		c.Authorize = authorize.Middleware()
	}
	return c
}

// The local IAM check sees each call as the SDK's would (service, operation, input fields):
// a call the policy refuses fails with AccessDenied before anything is sent.
func TestCallsAreAuthorizedBeforeTheyAreSent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKID/") || r.Header.Get("X-Amz-Security-Token") != "TOKEN" {
			t.Errorf("unsigned request: %v", r.Header)
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	p, err := localiam.New("JobWorkerFunction", []samtemplate.PolicyStatement{{Effect: "Allow",
		Action: []string{"sqs:SendMessage"}, Resource: []string{"arn:aws:sqs:us-east-1:123456789012:ok"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, p)
	call := func(op, queue string) error {
		resp, err := c.Do(context.Background(), awscall.Request{Op: op, Input: &queueInput{QueueUrl: "http://q/123456789012/" + queue},
			Method: http.MethodPost, URL: srv.URL + "/", Body: []byte("{}")})
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := call("SendMessageBatch", "ok"); err != nil {
		t.Fatalf("allowed call: %v", err)
	}
	if err := call("SendMessageBatch", "other"); !localiam.IsAccessDenied(err) {
		t.Fatalf("call on another queue: %v, want AccessDenied", err)
	}
	if err := call("ChangeMessageVisibility", "ok"); !localiam.IsAccessDenied(err) {
		t.Fatalf("action the policy lacks: %v, want AccessDenied", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests reached the service, want 1 (refused calls are not sent)", n)
	}
	if _, err := c.Presign(context.Background(), "ChangeMessageVisibility", &queueInput{QueueUrl: "http://q/1/ok"}, http.MethodGet, srv.URL, 60); !localiam.IsAccessDenied(err) {
		t.Fatalf("presign of a refused call: %v, want AccessDenied", err)
	}
}

// Throttling and 5xx answers are tried again (3 attempts in all); a client error is not,
// and comes back as an API error with the service's code.
func TestRetriesAndErrors(t *testing.T) {
	var hits atomic.Int32
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if n < 3 || status != http.StatusServiceUnavailable {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#Bad","message":"no"}`)
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c := client(t, nil)
	req := awscall.Request{Op: "SendMessageBatch", Method: http.MethodPost, URL: srv.URL, Body: []byte("{}"),
		DecodeError: func(int, http.Header, []byte) *awscall.Error { return &awscall.Error{Code: "Bad", Message: "no"} }}
	resp, err := c.Do(context.Background(), req)
	if err != nil || hits.Load() != 3 {
		t.Fatalf("after two 503s: %v, %d attempts; want success on the third", err, hits.Load())
	}
	resp.Body.Close()

	hits.Store(0)
	status = http.StatusBadRequest
	_, err = c.Do(context.Background(), req)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "Bad" || hits.Load() != 1 {
		t.Fatalf("400: %v after %d attempts; want the API error Bad after 1", err, hits.Load())
	}

	srv.Close() // an outage: every attempt fails to connect
	if _, err := c.Do(context.Background(), req); err == nil {
		t.Fatal("a call to a closed endpoint succeeded")
	}
}
