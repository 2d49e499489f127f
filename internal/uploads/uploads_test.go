package uploads

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rollcall/rollcall/internal/awscall"
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
