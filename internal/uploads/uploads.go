// Package uploads keeps roster files in S3 (the S3 emulator locally): presigned PUTs for
// uploads over the inline limit, read back when a job names them. The domain's Uploads.
//
// The bucket is reached with a small client of its own (two operations, signed by the SDK's
// Signature Version 4 signer, see internal/awscall) rather than the SDK's S3 module, whose
// code and initialization JobsFunction would otherwise carry at every cold start.
package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// Store is the uploads bucket. Objects are uploads/<owner>/<id>: an upload id is usable only
// by whoever asked for it.
type Store struct {
	Client *awscall.Client // ServiceID "S3", SigningName "s3", S3 true
	Bucket string
	// Endpoint, when set, is the S3 emulator's: path-style URLs (<endpoint>/<bucket>/<key>).
	// Empty: the bucket's virtual-hosted endpoint in the client's region.
	Endpoint string
	Now      func() time.Time
}

var _ rollcall.Uploads = (*Store)(nil)

// NewClient is the S3 client of a Store: c with S3's names and signing rules.
func NewClient(c *awscall.Client) *awscall.Client {
	c.ServiceID, c.SigningName, c.S3 = "S3", "s3", true
	return c
}

func objectKey(owner, id string) string {
	return "uploads/" + rollcall.NormalizeUsername(owner) + "/" + id + ".csv"
}

// object is what the authorization hook reads of an object operation (the SDK's field names).
type object struct {
	Bucket string
	Key    string
}

// objectURL is the object's URL with the operation's x-id, as the SDK builds it.
func (s *Store) objectURL(key, op string) string {
	path := httpbinding.EscapePath(key, false)
	if s.Endpoint != "" {
		return strings.TrimRight(s.Endpoint, "/") + "/" + s.Bucket + "/" + path + "?x-id=" + op
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(s.Client.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://" + s.Bucket + ".s3." + s.Client.Region + "." + domain + "/" + path + "?x-id=" + op
}

// NewUpload presigns a PUT of a new object for ttl.
func (s *Store) NewUpload(ctx context.Context, owner string, ttl time.Duration) (string, string, time.Time, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	key := objectKey(owner, id)
	u, err := s.Client.Presign(ctx, "PutObject", &object{Bucket: s.Bucket, Key: key}, http.MethodPut, s.objectURL(key, "PutObject"), ttl)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return id, u, now.Add(ttl), nil
}

// DeleteUpload removes an upload once a job has read it (S3's DeleteObject succeeds for a
// key that is gone).
func (s *Store) DeleteUpload(ctx context.Context, owner, id string) error {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil
	}
	key := objectKey(owner, id)
	resp, err := s.Client.Do(ctx, awscall.Request{Op: "DeleteObject", Input: &object{Bucket: s.Bucket, Key: key},
		Method: http.MethodDelete, URL: s.objectURL(key, "DeleteObject"), DecodeError: decodeError})
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// OpenUpload reads an upload.
func (s *Store) OpenUpload(ctx context.Context, owner, id string) (io.ReadCloser, error) {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, rollcall.ErrUploadMissing
	}
	key := objectKey(owner, id)
	resp, err := s.Client.Do(ctx, awscall.Request{Op: "GetObject", Input: &object{Bucket: s.Bucket, Key: key},
		Method: http.MethodGet, URL: s.objectURL(key, "GetObject"), DecodeError: decodeError})
	if ae := (*awscall.Error)(nil); errors.As(err, &ae) && ae.Code == "NoSuchKey" {
		return nil, rollcall.ErrUploadMissing
	}
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// decodeError reads S3's XML error (<Error><Code>NoSuchKey</Code><Message>...</Message>):
// two elements, read without linking an XML decoder.
func decodeError(status int, _ http.Header, body []byte) *awscall.Error {
	e := &awscall.Error{Code: element(body, "Code"), Message: element(body, "Message")}
	if e.Code == "" && status == http.StatusNotFound {
		e.Code = "NotFound"
	}
	return e
}

// element is the text of the first <name> element of an S3 error (which holds no markup).
func element(body []byte, name string) string {
	_, rest, ok := strings.Cut(string(body), "<"+name+">")
	if !ok {
		return ""
	}
	text, _, _ := strings.Cut(rest, "</"+name+">")
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'", "&amp;", "&").Replace(text)
}
