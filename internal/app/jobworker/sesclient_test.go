package jobworker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/rollcall"
)

func testSender(endpoint string) *finishedMail {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	return &finishedMail{call: awscall.New(cfg, "SESv2", "ses", nil), endpoint: endpoint, from: "Rollcall <no-reply@x.org>",
		templatePrefix: "rollcall-local-", configurationSet: "rollcall-local"}
}

// The local IAM check reads the worker's send exactly as it reads the SDK's SendBulkEmail
// input with the same fields (sender, template, configuration set, recipients).
func TestJobMailIsAuthorizedAsTheSDKsSend(t *testing.T) {
	in := &sendBulkEmailInput{FromEmailAddress: "Rollcall <no-reply@x.org>", ConfigurationSetName: "rollcall-local",
		DefaultEmailTags: []sesTag{{Name: "MailKind", Value: "job_finished"}}}
	in.DefaultContent.Template = sesTemplate{TemplateName: "rollcall-local-job_finished", TemplateData: "{}"}
	var e sesEntry
	e.Destination.ToAddresses = []string{"a@y.org"}
	in.BulkEmailEntries = []sesEntry{e}
	got, err := localiam.Requests("SESv2", "SendBulkEmail", in, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := localiam.Requests("SESv2", "SendBulkEmail", &sesv2.SendBulkEmailInput{
		FromEmailAddress: aws.String("Rollcall <no-reply@x.org>"), ConfigurationSetName: aws.String("rollcall-local"),
		DefaultContent:   &sestypes.BulkEmailContent{Template: &sestypes.Template{TemplateName: aws.String("rollcall-local-job_finished")}},
		BulkEmailEntries: []sestypes.BulkEmailEntry{{Destination: &sestypes.Destination{ToAddresses: []string{"a@y.org"}}}},
	}, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("authorizations:\n got %+v\nwant %+v", got, want)
	}
}

// The request is SES v2's SendBulkEmail; each destination's status is classified as the mail
// functions' sender classifies it, and a failed call is a retry for every message.
func TestJobMailSendBulkEmail(t *testing.T) {
	var body map[string]any
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/email/outbound-bulk-emails" || !strings.Contains(r.Header.Get("Authorization"), "/ses/aws4_request") {
			t.Errorf("%s %s %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		if fail {
			w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException:http://internal.amazon.com/")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"slow down"}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		_, _ = io.WriteString(w, `{"BulkEmailEntryResults":[{"Status":"SUCCESS","MessageId":"m1"},{"Status":"MESSAGE_REJECTED","Error":"bad"},{"Status":"ACCOUNT_THROTTLED"}]}`)
	}))
	defer srv.Close()
	s := testSender(srv.URL)
	msgs := []rollcall.MailMessage{{To: "a@y.org", Data: map[string]string{"job_id": "j1"}}, {To: "b@y.org"}, {To: "c@y.org"}}
	res := s.Send(context.Background(), "job_finished", msgs)
	if res[0].Outcome != rollcall.MailAccepted || res[0].MessageID != "m1" || res[1].Outcome != rollcall.MailRejected || res[2].Outcome != rollcall.MailRetry {
		t.Fatalf("results %+v", res)
	}
	tmpl := body["DefaultContent"].(map[string]any)["Template"].(map[string]any)
	entry := body["BulkEmailEntries"].([]any)[0].(map[string]any)
	if body["FromEmailAddress"] != "Rollcall <no-reply@x.org>" || tmpl["TemplateName"] != "rollcall-local-job_finished" ||
		body["ConfigurationSetName"] != "rollcall-local" ||
		entry["ReplacementEmailContent"].(map[string]any)["ReplacementTemplate"].(map[string]any)["ReplacementTemplateData"] != `{"job_id":"j1"}` {
		t.Fatalf("request %v", body)
	}

	fail = true
	res = s.Send(context.Background(), "job_finished", msgs[:1])
	if res[0].Outcome != rollcall.MailRetry || !strings.Contains(res[0].Err.Error(), "TooManyRequestsException") {
		t.Fatalf("throttled call: %+v", res)
	}
}
