package uploads

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

var signingTime = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// atTime presigns at signingTime (the SDK's presigner takes its clock from the SDK); wrapped
// around a signer with the S3 client's own options.
type atTime struct{ s *v4.Signer }

func (p atTime) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.s.PresignHTTP(ctx, creds, r, payloadHash, service, region, signingTime, optFns...)
}

// The presigned upload URL is the one the SDK's S3 presign client makes for the same object
// (so S3 accepts it as it accepts the SDK's), path-style on an emulator and virtual-hosted in
// AWS, with a session token and a key that needs escaping.
func TestPresignedPutIsTheSDKs(t *testing.T) {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "TOKEN")}
	for _, endpoint := range []string{"", "http://127.0.0.1:9000"} {
		s := &Store{Client: NewClient(awscall.New(cfg, "", "", nil)), Bucket: "rollcall-uploads", Endpoint: endpoint}
		s.Client.Now = func() time.Time { return signingTime }
		key := objectKey("Ada+Lovelace@example.org", "0123456789abcdef0123456789abcdef")
		got, err := s.Client.Presign(context.Background(), "PutObject", &object{Bucket: s.Bucket, Key: key}, http.MethodPut,
			s.objectURL(key, "PutObject"), 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sdk := s3.NewFromConfig(cfg, func(o *s3.Options) {
			if endpoint != "" {
				o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
			}
		})
		want, err := s3.NewPresignClient(sdk, func(o *s3.PresignOptions) {
			o.Presigner = atTime{v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })}
		}).
			PresignPutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)},
				s3.WithPresignExpires(15*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		gu, _ := url.Parse(got)
		wu, _ := url.Parse(want.URL)
		if gu.Scheme+gu.Host+gu.EscapedPath() != wu.Scheme+wu.Host+wu.EscapedPath() || gu.Query().Encode() != wu.Query().Encode() {
			t.Errorf("endpoint %q:\n got %s\nwant %s", endpoint, got, want.URL)
		}
	}
}

func TestErrorElements(t *testing.T) {
	e := decodeError(404, nil, []byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The key &amp; so on</Message></Error>`))
	if e.Code != "NoSuchKey" || e.Message != "The key & so on" {
		t.Fatalf("%+v", e)
	}
	if e := decodeError(404, nil, nil); e.Code != "NotFound" {
		t.Fatalf("empty 404: %+v", e)
	}
}

// An upload goes in through its presigned URL, is read back, deleted, and is then missing;
// against the local stack's S3 emulator, with the local IAM check on every call.
func TestUploadRoundTrip(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("uploads-bucket"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithAutoBucket(false), gofakes3.WithTimeSkewLimit(time.Hour)).Server())
	defer srv.Close()
	p, err := localiam.New("JobsFunction", []samtemplate.PolicyStatement{{Effect: "Allow",
		Action: []string{"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}, Resource: []string{"arn:aws:s3:::uploads-bucket/uploads/*"}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	s := &Store{Client: NewClient(awscall.New(cfg, "", "", p.Middleware())), Bucket: "uploads-bucket", Endpoint: srv.URL}
	ctx := context.Background()
	if _, err := s.OpenUpload(ctx, "ada", "0123456789abcdef0123456789abcdef"); !errors.Is(err, rollcall.ErrUploadMissing) {
		t.Fatalf("open before upload: %v, want ErrUploadMissing", err)
	}
	id, u, _, err := s.NewUpload(ctx, "Ada", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("username\nada\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT to the presigned URL: %v %v", err, resp)
	}
	resp.Body.Close()
	rc, err := s.OpenUpload(ctx, "ada", id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "username\nada\n" {
		t.Fatalf("read back %q", b)
	}
	if err := s.DeleteUpload(ctx, "ada", id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenUpload(ctx, "ada", id); !errors.Is(err, rollcall.ErrUploadMissing) {
		t.Fatalf("open after delete: %v, want ErrUploadMissing", err)
	}
	if err := s.DeleteUpload(ctx, "ada", id); err != nil {
		t.Fatalf("delete of a deleted upload: %v", err)
	}
	// The policy is checked: another bucket is refused before anything is sent.
	other := &Store{Client: s.Client, Bucket: "elsewhere", Endpoint: srv.URL}
	if _, _, _, err := other.NewUpload(ctx, "ada", time.Minute); !localiam.IsAccessDenied(err) {
		t.Fatalf("presign in a bucket the policy lacks: %v, want AccessDenied", err)
	}
	if _, err := other.OpenUpload(ctx, "ada", id); !localiam.IsAccessDenied(err) {
		t.Fatalf("read from a bucket the policy lacks: %v, want AccessDenied", err)
	}
}
