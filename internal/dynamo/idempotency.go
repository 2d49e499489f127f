package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Idempotency records: PK=IDEM#<hash of scope and key>, SK=IDEM is the head. While an attempt
// runs, the head is its reservation (request_hash, state=running, attempt, until); when it
// ends with a final answer, the head becomes the response (state=done, status, headers,
// parts) and the body lies gzipped in SK=IDEM#<attempt>#<n> parts of at most idemPartBytes,
// since a 10,000-identifier response can exceed DynamoDB's 400 KB item limit. The parts are
// written first and the head last, on condition that the attempt still holds it, so a record
// is either a whole response or a reservation. The PK is a fixed-length hash: a caller's
// username, a long path and a 255-character key never make a key DynamoDB refuses.

const idemPartBytes = 300 << 10

const (
	idemRunning = "running"
	idemDone    = "done"
)

var _ rollcall.IdempotencyStore = (*Store)(nil)

// IdempotencyPK is the record of one Idempotency-Key in one scope (caller and route).
func IdempotencyPK(scope, idemKey string) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + idemKey))
	return pfxIdem + base64.RawURLEncoding.EncodeToString(sum[:])
}

func idemPartSK(attempt string, n int) string { return fmt.Sprintf("%s#%s#%03d", skIdem, attempt, n) }

// Reserve takes (scope, key) for attempt until the given time, or reports what holds it.
func (s *Store) Reserve(ctx context.Context, scope, idemKey, requestHash, attempt string, until time.Time, ttl time.Duration) (*rollcall.Reservation, error) {
	pk := IdempotencyPK(scope, idemKey)
	for try := 0; ; try++ {
		now := time.Now()
		head := key(pk, skIdem)
		head["request_hash"] = str(requestHash)
		head["state"] = str(idemRunning)
		head["attempt"] = str(attempt)
		head["until"] = num(until.UnixMilli())
		head["ttl"] = num(now.Add(ttl).Unix())
		_, err := s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: head,
			// Free: no record, or a reservation whose attempt is gone.
			ConditionExpression:       aws.String("attribute_not_exists(PK) OR (#st = :running AND #u < :now)"),
			ExpressionAttributeNames:  map[string]string{"#st": "state", "#u": "until"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":running": str(idemRunning), ":now": num(now.UnixMilli())}})
		var ccf *types.ConditionalCheckFailedException
		if err == nil {
			return nil, nil
		}
		if !errors.As(err, &ccf) {
			return nil, fmt.Errorf("reserve idempotency key: %w", err)
		}
		held, err := s.readIdem(ctx, pk)
		if err != nil {
			return nil, err
		}
		if held != nil || try >= 2 {
			if held == nil { // released and taken again while we looked: someone runs it
				held = &rollcall.Reservation{RequestHash: requestHash}
			}
			return held, nil
		}
		// Released between our write and our read: try again.
	}
}

// readIdem reads what holds a key: a running reservation or a whole response.
func (s *Store) readIdem(ctx context.Context, pk string) (*rollcall.Reservation, error) {
	head, err := s.get(ctx, pk, skIdem)
	if err != nil || head == nil {
		return nil, err
	}
	res := &rollcall.Reservation{RequestHash: getS(head, "request_hash")}
	if getS(head, "state") == idemRunning {
		return res, nil
	}
	attempt := getS(head, "attempt")
	parts := int(getN(head, "parts"))
	var gz []byte
	for i := 0; i < parts; i++ {
		it, err := s.get(ctx, pk, idemPartSK(attempt, i))
		if err != nil {
			return nil, err
		}
		if it == nil {
			return nil, fmt.Errorf("idempotency record %s: part %d missing", pk, i)
		}
		if b, _ := it["body"].(*types.AttributeValueMemberB); b != nil {
			gz = append(gz, b.Value...)
		}
	}
	body, err := gunzip(gz)
	if err != nil {
		return nil, fmt.Errorf("idempotency record %s: %w", pk, err)
	}
	header := http.Header{}
	if h := getS(head, "headers"); h != "" {
		if err := json.Unmarshal([]byte(h), &header); err != nil {
			return nil, fmt.Errorf("idempotency record %s: headers: %w", pk, err)
		}
	}
	res.Response = &rollcall.StoredResponse{RequestHash: res.RequestHash, Status: int(getN(head, "status")), Header: header, Body: body}
	return res, nil
}

// Complete stores the attempt's response in place of its reservation.
func (s *Store) Complete(ctx context.Context, scope, idemKey, attempt string, rec *rollcall.StoredResponse, ttl time.Duration) error {
	pk := IdempotencyPK(scope, idemKey)
	expires := num(time.Now().Add(ttl).Unix())
	gz, err := gzipBytes(rec.Body)
	if err != nil {
		return err
	}
	headers, err := json.Marshal(rec.Header)
	if err != nil {
		return err
	}
	parts := 0
	for off := 0; off < len(gz) || parts == 0; off += idemPartBytes {
		end := min(off+idemPartBytes, len(gz))
		it := key(pk, idemPartSK(attempt, parts))
		it["body"] = &types.AttributeValueMemberB{Value: gz[off:end]}
		it["ttl"] = expires
		_, err := s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: it})
		if err != nil {
			return fmt.Errorf("store idempotent response: %w", err)
		}
		parts++
		if end >= len(gz) {
			break
		}
	}
	head := key(pk, skIdem)
	head["request_hash"] = str(rec.RequestHash)
	head["state"] = str(idemDone)
	head["attempt"] = str(attempt)
	head["status"] = num(int64(rec.Status))
	head["headers"] = str(string(headers))
	head["parts"] = num(int64(parts))
	head["ttl"] = expires
	cond, names, values := stillReserved(attempt)
	_, err = s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: head,
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	return reservationError("store idempotent response", err)
}

// Release deletes the attempt's reservation.
func (s *Store) Release(ctx context.Context, scope, idemKey, attempt string) error {
	cond, names, values := stillReserved(attempt)
	_, err := s.db().DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.Table, Key: key(IdempotencyPK(scope, idemKey), skIdem),
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	return reservationError("release idempotency key", err)
}

// stillReserved is the condition that the attempt still holds the key's reservation (it did
// not lapse and pass to a retry).
func stillReserved(attempt string) (*string, map[string]string, map[string]types.AttributeValue) {
	return aws.String("#st = :running AND #a = :a"), map[string]string{"#st": "state", "#a": "attempt"},
		map[string]types.AttributeValue{":running": str(idemRunning), ":a": str(attempt)}
}

// reservationError maps a write conditioned on stillReserved: a failed condition means the
// reservation was lost.
func reservationError(what string, err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return rollcall.ErrReservationLost
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
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
