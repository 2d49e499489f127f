package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// FindByTokenHash finds an invitation by the SHA-256 of its token: GSI3 (keys only, eventually
// consistent) gives the item's key, a consistent GetItem the item, whose token_hash must still
// be tokenHash (a re-issued invitation has moved on to another token).
func (s *Store) FindByTokenHash(ctx context.Context, tokenHash string) (*rollcall.Enrollment, error) {
	out, err := s.db().Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.Table,
		IndexName:                 aws.String(IndexToken),
		KeyConditionExpression:    aws.String("GSI3PK = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": str(TokenIndexPK(tokenHash))},
		Limit:                     aws.Int32(2),
	})
	if err != nil {
		return nil, fmt.Errorf("find invitation: %w", err)
	}
	for _, k := range out.Items {
		it, err := s.get(ctx, getS(k, "PK"), getS(k, "SK"))
		if err != nil {
			return nil, fmt.Errorf("find invitation: %w", err)
		}
		if it != nil && IsEnrollment(it) && getS(it, "token_hash") == tokenHash {
			return DecodeEnrollment(it), nil
		}
	}
	return nil, rollcall.ErrNotFound
}

// ExpiredInvitationsPageSize is how many index entries one Query of ExpiredInvitations reads.
const ExpiredInvitationsPageSize = 100

// ExpiredInvitations pages through the X# shards of GSI2 (open invitations by expiry) for
// entries due at or before `before`, querying up to Parallel shards at once. Each shard's pages
// go to fn in order; fn may be called from several goroutines at once.
func (s *Store) ExpiredInvitations(ctx context.Context, before time.Time, fn func([]*rollcall.Enrollment) bool) error {
	return s.queryDue(ctx, expiryIndex, before, fn)
}

// expiryIndex is GSI2's X# shards: open invitations by expiry (GSI2SK <expires>#<id>).
var expiryIndex = dueIndex{what: "expired invitations", name: IndexTime, pkAttr: "GSI2PK", skAttr: "GSI2SK",
	pk: ExpiryIndexPK, decode: DecodeEnrollment, pageSize: ExpiredInvitationsPageSize}

// ---------------------------------------------------------------------------------------------
// Audit entries: PK=P#<eh> SK=A#<ch>#<at>#<ver>, written from the stream.

func encodeAudit(a *rollcall.AuditEntry) item {
	pk, _ := EnrollmentKey(a.EnrollmentID)
	it := key(pk, auditEntrySK(a.EnrollmentID, a.At, a.Version, a.Index))
	it["id"] = str(a.EnrollmentID)
	it["course_id"] = str(a.CourseID)
	it["email"] = str(a.Email)
	it["by"] = str(a.By)
	it["at"] = str(FormatTime(a.At))
	it["transition"] = str(a.Transition)
	it["source"] = str(a.Source)
	it["state_after"] = str(string(a.StateAfter))
	it["ver"] = num(a.Version)
	if a.Reason != "" {
		it["reason"] = str(a.Reason)
	}
	if a.StateBefore != "" {
		it["state_before"] = str(string(a.StateBefore))
	}
	if a.Index > 0 {
		it["idx"] = num(int64(a.Index))
	}
	if a.From != "" {
		it["from"] = str(a.From)
	}
	if a.To != "" {
		it["to"] = str(a.To)
	}
	return it
}

func decodeAudit(it item) *rollcall.AuditEntry {
	return &rollcall.AuditEntry{
		EnrollmentID: getS(it, "id"), CourseID: getS(it, "course_id"), Email: getS(it, "email"),
		By: getS(it, "by"), At: getTime(it, "at"), Reason: getS(it, "reason"), Transition: getS(it, "transition"),
		Source: getS(it, "source"), StateBefore: rollcall.State(getS(it, "state_before")),
		StateAfter: rollcall.State(getS(it, "state_after")), Version: getN(it, "ver"),
		Index: int(getN(it, "idx")), From: getS(it, "from"), To: getS(it, "to"),
	}
}

// AuditEntries lists an enrollment's audit trail, oldest first (one Query of its partition).
func (s *Store) AuditEntries(ctx context.Context, id string) ([]*rollcall.AuditEntry, error) {
	if !rollcall.ValidEnrollmentID(id) {
		return nil, rollcall.ErrNotFound
	}
	pk, _ := EnrollmentKey(id)
	var out []*rollcall.AuditEntry
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :a)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(pk), ":a": str(AuditPrefix(id))},
	}, func(it item) bool {
		out = append(out, decodeAudit(it))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return out, nil
}

// WriteAuditEntries stores entries with BatchWriteItem (25 a call, several calls at once).
// The key is (enrollment, time, version), so writing an entry again (a re-delivered stream
// record) rewrites the same item. It returns the entries that could not be written, by index
// into entries, with the reason; err is set when nothing could be attempted.
func (s *Store) WriteAuditEntries(ctx context.Context, entries []*rollcall.AuditEntry) (map[int]error, error) {
	items := make([]item, len(entries))
	for i, a := range entries {
		items[i] = encodeAudit(a)
	}
	return s.batchPut(ctx, items)
}
