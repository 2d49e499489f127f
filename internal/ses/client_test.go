package ses

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rollcall/rollcall/internal/awscall"
)

// The client sends what the SDK's sesv2 client sends: a signed POST of the input's JSON to
// /v2/email/outbound-bulk-emails; it reads the entry results, retries throttling and reads
// SES's error code from the X-Amzn-ErrorType header.
func TestClientSendBulkEmail(t *testing.T) {
	var calls atomic.Int32
	var answer func(w http.ResponseWriter)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		var in map[string]any
		if r.Method != http.MethodPost || r.URL.Path != "/v2/email/outbound-bulk-emails" ||
			r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &in) != nil ||
			!strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/ses/aws4_request") ||
			in["FromEmailAddress"] != "a@x.org" || in["DefaultContent"].(map[string]any)["Template"].(map[string]any)["TemplateName"] != "t-invited" {
			t.Errorf("request %s %s %v %s", r.Method, r.URL.Path, r.Header, body)
		}
		if _, named := in["ConfigurationSetName"]; named {
			t.Errorf("an empty configuration set is sent: %s", body)
		}
		answer(w)
	}))
	defer srv.Close()
	c := NewClient(aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, srv.URL, nil)
	in := &SendBulkEmailInput{FromEmailAddress: "a@x.org", DefaultContent: BulkEmailContent{Template{TemplateName: "t-invited"}},
		BulkEmailEntries: []BulkEmailEntry{{Destination: Destination{ToAddresses: []string{"b@y.org"}}}}}

	answer = func(w http.ResponseWriter) {
		_, _ = w.Write([]byte(`{"BulkEmailEntryResults":[{"Status":"SUCCESS","MessageId":"m-1"}]}`))
	}
	out, err := c.SendBulkEmail(context.Background(), in)
	if err != nil || len(out.BulkEmailEntryResults) != 1 || out.BulkEmailEntryResults[0].MessageID != "m-1" ||
		out.BulkEmailEntryResults[0].Status != StatusSuccess {
		t.Fatalf("%+v %v", out, err)
	}

	calls.Store(0)
	answer = func(w http.ResponseWriter) {
		w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException:http://internal.amazon.com/coral/com.amazonaws.sesv2/")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"message":"Too many requests."}`))
	}
	_, err = c.SendBulkEmail(context.Background(), in)
	var ae *awscall.Error
	if !errors.As(err, &ae) || ae.Code != "TooManyRequestsException" || ae.Message != "Too many requests." || calls.Load() != 3 {
		t.Fatalf("throttled: %v after %d calls", err, calls.Load())
	}

	calls.Store(0)
	answer = func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.sesv2#MessageRejected","message":"Email address is not verified."}`))
	}
	_, err = c.SendBulkEmail(context.Background(), in)
	if !errors.As(err, &ae) || ae.Code != "MessageRejected" || calls.Load() != 1 {
		t.Fatalf("rejected: %v after %d calls", err, calls.Load())
	}
}
