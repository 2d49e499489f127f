// Package uploads keeps roster files in S3 (the S3 emulator locally): presigned PUTs for
// uploads over the inline limit, read back when a job names them. The domain's Uploads.
package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Store is the uploads bucket. Objects are uploads/<owner>/<id>: an upload id is usable only
// by whoever asked for it.
type Store struct {
	Client *s3.Client
	Bucket string
	Now    func() time.Time
}

var _ rollcall.Uploads = (*Store)(nil)

func objectKey(owner, id string) string {
	return "uploads/" + rollcall.NormalizeUsername(owner) + "/" + id + ".csv"
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
	req, err := s3.NewPresignClient(s.Client).PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(objectKey(owner, id)),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", "", time.Time{}, err
	}
	return id, req.URL, now.Add(ttl), nil
}

// DeleteUpload removes an upload once a job has read it (S3's DeleteObject succeeds for a
// key that is gone).
func (s *Store) DeleteUpload(ctx context.Context, owner, id string) error {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil
	}
	_, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(objectKey(owner, id))})
	return err
}

// OpenUpload reads an upload.
func (s *Store) OpenUpload(ctx context.Context, owner, id string) (io.ReadCloser, error) {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, rollcall.ErrUploadMissing
	}
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(objectKey(owner, id))})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, rollcall.ErrUploadMissing
	}
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}
