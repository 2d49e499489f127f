package dynamo

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Images reads the table's items as the stream hands them over: the store owns the key schema
// and the item shapes, so the stream functions decode through it instead of knowing either.
type Images struct{}

// IsEnrollment reports whether a sort key is an enrollment item's.
func (Images) IsEnrollment(sk string) bool { return strings.HasPrefix(sk, pfxEnrollment) }

// DecodeEnrollment decodes an enrollment item.
func (Images) DecodeEnrollment(it map[string]types.AttributeValue) *rollcall.Enrollment {
	return DecodeEnrollment(it)
}

// IsJob reports whether a sort key is a roster job item's.
func (Images) IsJob(sk string) bool { return sk == skJob }

// DecodeJob decodes a roster job item.
func (Images) DecodeJob(it map[string]types.AttributeValue) *rollcall.Job { return decodeJob(it) }

// OwedMailShards is how many shards the owed-mail index spreads over (the sweep reads each).
func (s *Store) OwedMailShards() int { return Shards }
