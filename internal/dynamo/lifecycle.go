package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Course modes, role admins, field changes and the history pages (docs/data-model.md#lifecycle).

func getStringSet(it item, k string) []string {
	if v, ok := it[k].(*types.AttributeValueMemberSS); ok {
		return append([]string(nil), v.Value...)
	}
	return nil
}

// decodeCourseDefaults fills what a course stored before modes existed lacks.
func decodeCourseDefaults(c *rollcall.Course) *rollcall.Course {
	if len(c.Modes) == 0 {
		c.Modes = []string{rollcall.DefaultMode}
	}
	if c.DefaultMode == "" {
		c.DefaultMode = rollcall.DefaultMode
	}
	return c
}

// encodeChangeSides stores the sides of a field change and the changes that rode along with
// it (chg_from, chg_to, chg_more: a list of [transition, from, to]).
func encodeChangeSides(it item, c *rollcall.Change) {
	if c.From != "" {
		it["chg_from"] = str(c.From)
	}
	if c.To != "" {
		it["chg_to"] = str(c.To)
	}
	if len(c.More) > 0 {
		l := make([]types.AttributeValue, len(c.More))
		for i, st := range c.More {
			l[i] = strList([]string{st.Transition, st.From, st.To})
		}
		it["chg_more"] = &types.AttributeValueMemberL{Value: l}
	}
}

func decodeChangeSides(it item, c *rollcall.Change) {
	c.From, c.To = getS(it, "chg_from"), getS(it, "chg_to")
	l, ok := it["chg_more"].(*types.AttributeValueMemberL)
	if !ok {
		return
	}
	for _, v := range l.Value {
		st := getStrings(item{"x": v}, "x")
		if len(st) == 3 {
			c.More = append(c.More, rollcall.Step{Transition: st[0], From: st[1], To: st[2]})
		}
	}
}

// SetRoleAdmin adds username to, or removes it from, the course's role_admins set (one
// UpdateItem; applying it again changes nothing). A course that does not exist is left alone.
func (s *Store) SetRoleAdmin(ctx context.Context, courseID, username string, admin bool) error {
	op := "DELETE"
	if admin {
		op = "ADD"
	}
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: key(CoursePK(courseID), skCourse), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		UpdateExpression:          aws.String(op + " role_admins :u"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": &types.AttributeValueMemberSS{Value: []string{username}}},
	})
	if err != nil {
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return nil
		}
		return fmt.Errorf("set role admin %s: %w", courseID, err)
	}
	s.Metrics.write(ccOf(out.ConsumedCapacity)...)
	return nil
}

// AuditPage lists up to limit audit entries of an enrollment, oldest first, strictly after pos
// (one Query of the enrollment's partition, from the position on).
func (s *Store) AuditPage(ctx context.Context, id string, after *rollcall.AuditPos, limit int) ([]*rollcall.AuditEntry, bool, error) {
	if !rollcall.ValidEnrollmentID(id) {
		return nil, false, rollcall.ErrNotFound
	}
	if limit <= 0 {
		limit = 100
	}
	pk, _ := EnrollmentKey(id)
	prefix := AuditPrefix(id)
	cond := "PK = :pk AND begins_with(SK, :a)"
	vals := map[string]types.AttributeValue{":pk": str(pk), ":a": str(prefix)}
	if after != nil {
		// Every SK of this enrollment after the position: (after, prefix + "\uffff").
		cond = "PK = :pk AND SK BETWEEN :from AND :to"
		vals = map[string]types.AttributeValue{":pk": str(pk),
			":from": str(auditEntrySK(id, after.At, after.Version, after.Index) + "\x00"), ":to": str(prefix + "\U0010ffff")}
	}
	var out []*rollcall.AuditEntry
	more := false
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName: &s.Table, KeyConditionExpression: aws.String(cond), ExpressionAttributeValues: vals,
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(int32(min(limit+1, 1000))),
	}, func(it item) bool {
		if !strings.HasPrefix(getS(it, "SK"), prefix) {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, decodeAudit(it))
		return true
	})
	if err != nil {
		return nil, false, fmt.Errorf("audit page: %w", err)
	}
	return out, more, nil
}
