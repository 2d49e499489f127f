// Package stream turns the table's DynamoDB stream records (as Lambda delivers them) into
// enrollment changes, and holds the two stream-fed functions: the mailer, which sends the mail
// an enrollment change owes, and the audit function, which records every change.
package stream

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Change is one stream record of an enrollment item: the images on both sides of the write.
type Change struct {
	// Seq is the record's sequence number: the ItemIdentifier of a reported failure.
	Seq string
	// Old is nil for an insert; New is nil for a removal.
	Old, New *rollcall.Enrollment
}

// Items is how the stream functions read the table's items: the store's key schema and item
// shapes (dynamo.Images), which this package does not know.
type Items interface {
	IsEnrollment(sk string) bool
	DecodeEnrollment(item map[string]types.AttributeValue) *rollcall.Enrollment
	// IsJob reports whether a sort key is a roster job item's (not its chunks').
	IsJob(sk string) bool
	DecodeJob(item map[string]types.AttributeValue) *rollcall.Job
}

// Changes decodes the enrollment records of a batch, in order. Records of other items (users,
// courses, leases, audit entries, mail markers) are left out; a record that cannot be decoded is
// returned in bad (by sequence number) with the reason.
func Changes(ev events.DynamoDBEvent, items Items) (changes []Change, bad map[string]error) {
	for _, r := range ev.Records {
		seq := r.Change.SequenceNumber
		if !isEnrollmentKey(r.Change.Keys, items) {
			continue
		}
		c := Change{Seq: seq}
		var err error
		if c.Old, err = decode(r.Change.OldImage, items); err == nil {
			c.New, err = decode(r.Change.NewImage, items)
		}
		if err != nil {
			if bad == nil {
				bad = map[string]error{}
			}
			bad[seq] = err
			continue
		}
		changes = append(changes, c)
	}
	return changes, bad
}

func isEnrollmentKey(keys map[string]events.DynamoDBAttributeValue, items Items) bool {
	sk, ok := keys["SK"]
	return ok && sk.DataType() == events.DataTypeString && items.IsEnrollment(sk.String())
}

func decode(img map[string]events.DynamoDBAttributeValue, items Items) (*rollcall.Enrollment, error) {
	if len(img) == 0 {
		return nil, nil
	}
	it, err := Item(img)
	if err != nil {
		return nil, err
	}
	return items.DecodeEnrollment(it), nil
}

// Item converts a stream image to the SDK's attribute values.
func Item(img map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(img))
	for k, v := range img {
		av, err := Attr(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

// Attr converts one attribute value of aws-lambda-go's to the SDK's, type for type.
func Attr(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		l := v.List()
		out := make([]types.AttributeValue, len(l))
		for i, e := range l {
			c, err := Attr(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case events.DataTypeMap:
		m, err := Item(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, fmt.Errorf("unsupported attribute type %v", v.DataType())
}

// failures is the batch response naming the records to retry, in batch order.
func failures(ev events.DynamoDBEvent, failed map[string]bool) events.DynamoDBEventResponse {
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	for _, r := range ev.Records {
		if seq := r.Change.SequenceNumber; failed[seq] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
		}
	}
	return resp
}
