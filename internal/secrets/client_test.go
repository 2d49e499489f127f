package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rollcall/rollcall/internal/awscall"
)

// The client sends GetSecretValue as Secrets Manager expects it: AWS JSON 1.1 with the target
// header, a Signature Version 4 signature over exactly what arrives (the server signs the
// received request again and compares), the session token, and reads the answer's fields.
func TestHTTPClientSignsAndReads(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret-key", "session-token")
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
			r.Header.Get("Content-Type") != "application/x-amz-json-1.1" || r.Header.Get("X-Amz-Security-Token") != "session-token" {
			t.Errorf("request %s %s %v", r.Method, r.URL, r.Header)
		}
		var in map[string]string
		if err := json.Unmarshal(body, &in); err != nil || in["SecretId"] != "arn:aws:secretsmanager:eu-west-1:1:secret:k" {
			t.Errorf("body %s", body)
		}
		again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.Path, bytes.NewReader(body))
		again.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		again.Header.Set("X-Amz-Target", r.Header.Get("X-Amz-Target"))
		sum := sha256.Sum256(body)
		c, _ := creds.Retrieve(context.Background())
		if err := v4.NewSigner().SignHTTP(context.Background(), c, again, hex.EncodeToString(sum[:]), "secretsmanager", "eu-west-1", at); err != nil {
			t.Fatal(err)
		}
		if got, want := r.Header.Get("Authorization"), again.Header.Get("Authorization"); got != want ||
			!strings.Contains(got, "/eu-west-1/secretsmanager/aws4_request") {
			t.Errorf("Authorization %q, want %q", got, want)
		}
		switch {
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // retried
		case in["VersionStage"] == "AWSPREVIOUS":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS"}`)
		default:
			_, _ = io.WriteString(w, `{"ARN":"x","Name":"k","VersionId":"1b2c3d4e-0000","SecretString":"`+strings.Repeat("s", 40)+`","VersionStages":["AWSCURRENT"],"CreatedDate":1.7E9}`)
		}
	}))
	defer srv.Close()
	c := &HTTPClient{API: &awscall.Client{ServiceID: "Secrets Manager", SigningName: "secretsmanager", Region: "eu-west-1",
		Credentials: aws.NewCredentialsCache(creds), Now: func() time.Time { return at }}, Endpoint: srv.URL}
	ring, err := Load(context.Background(), c, "arn:aws:secretsmanager:eu-west-1:1:secret:k")
	if err != nil {
		t.Fatal(err)
	}
	if ring.Current.ID != "1b2c3d4e" || len(ring.Previous) != 0 || calls.Load() != 3 {
		t.Fatalf("ring %+v after %d calls", ring, calls.Load())
	}
	if _, err := c.GetSecretValue(context.Background(), "arn:aws:secretsmanager:eu-west-1:1:secret:k", "AWSPREVIOUS"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("not found: %v", err)
	}
}

// Without an override the client calls the region's public endpoint.
func TestHTTPClientEndpoint(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":  "https://secretsmanager.us-east-1.amazonaws.com/",
		"cn-north-1": "https://secretsmanager.cn-north-1.amazonaws.com.cn/",
	} {
		if got := (&HTTPClient{API: &awscall.Client{Region: region}}).endpoint(); got != want {
			t.Errorf("%s: %s, want %s", region, got, want)
		}
	}
}
