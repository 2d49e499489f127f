package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/httpapi"
)

// Idempotency records: PK=IDEM#<scope>#<key>, SK=IDEM (the head: request hash, status,
// content type, part count) and SK=IDEM#<n> for the gzipped body in parts of at most
// idemPartBytes, since a 10,000-identifier response can exceed DynamoDB's 400 KB item limit.
// The head is written last and conditionally, so a record is either whole or absent.

const idemPartBytes = 300 << 10

var _ httpapi.IdempotencyStore = (*Store)(nil)

// GetResponse returns the stored response of (scope, key), or nil.
func (s *Store) GetResponse(ctx context.Context, scope, idemKey string) (*httpapi.StoredResponse, error) {
	pk := IdempotencyPK(scope, idemKey)
	head, err := s.get(ctx, pk, skIdem)
	if err != nil || head == nil {
		return nil, err
	}
	parts := int(getN(head, "parts"))
	var gz []byte
	for i := 0; i < parts; i++ {
		it, err := s.get(ctx, pk, fmt.Sprintf("%s#%03d", skIdem, i))
		if err != nil {
			return nil, err
		}
		if it == nil {
			return nil, fmt.Errorf("idempotency record %s: part %d missing", pk, i)
		}
		b, _ := it["body"].(*types.AttributeValueMemberB)
		if b != nil {
			gz = append(gz, b.Value...)
		}
	}
	body, err := gunzip(gz)
	if err != nil {
		return nil, fmt.Errorf("idempotency record %s: %w", pk, err)
	}
	return &httpapi.StoredResponse{RequestHash: getS(head, "request_hash"), Status: int(getN(head, "status")),
		ContentType: getS(head, "content_type"), Body: body}, nil
}

// PutResponse stores rec unless (scope, key) already has a response; it returns what is stored.
func (s *Store) PutResponse(ctx context.Context, scope, idemKey string, rec *httpapi.StoredResponse, ttl time.Duration) (*httpapi.StoredResponse, error) {
	pk := IdempotencyPK(scope, idemKey)
	expires := num(time.Now().Add(ttl).Unix())
	gz, err := gzipBytes(rec.Body)
	if err != nil {
		return nil, err
	}
	parts := 0
	for off := 0; off < len(gz) || parts == 0; off += idemPartBytes {
		end := min(off+idemPartBytes, len(gz))
		it := key(pk, fmt.Sprintf("%s#%03d", skIdem, parts))
		it["body"] = &types.AttributeValueMemberB{Value: gz[off:end]}
		it["ttl"] = expires
		out, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: it, ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes})
		if err != nil {
			return nil, fmt.Errorf("store idempotent response: %w", err)
		}
		s.Metrics.write(ccOf(out.ConsumedCapacity)...)
		parts++
		if end >= len(gz) {
			break
		}
	}
	head := key(pk, skIdem)
	head["request_hash"] = str(rec.RequestHash)
	head["status"] = num(int64(rec.Status))
	head["content_type"] = str(rec.ContentType)
	head["parts"] = num(int64(parts))
	head["ttl"] = expires
	out, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: head,
		ConditionExpression: aws.String("attribute_not_exists(PK)"), ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return s.GetResponse(ctx, scope, idemKey)
	}
	if err != nil {
		return nil, fmt.Errorf("store idempotent response: %w", err)
	}
	s.Metrics.write(ccOf(out.ConsumedCapacity)...)
	return rec, nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
