package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	if c.ReminderDays == nil {
		c.ReminderDays = []int{}
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
	_, err := s.db().UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: key(CoursePK(courseID), skCourse),
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

// encodeEnd stores the end date, the ending notice and the scheduled-work index entry.
func encodeEnd(it item, e *rollcall.Enrollment) {
	if !e.EndAt.IsZero() {
		it["end_at"] = str(FormatTime(e.EndAt))
	}
	if !e.EndNoticeAt.IsZero() {
		it["end_notice_at"] = str(FormatTime(e.EndNoticeAt))
	}
	if e.EndNoticeSent {
		it["end_notice_sent"] = boolean(true)
	}
	if e.RemindersSent > 0 {
		it["reminders_sent"] = num(int64(e.RemindersSent))
	}
	if !e.InvitedAt.IsZero() {
		it["invited_at"] = str(FormatTime(e.InvitedAt))
	}
	if !e.LastSentAt.IsZero() {
		it["last_sent_at"] = str(FormatTime(e.LastSentAt))
		it["send_count"] = num(int64(e.SendCount))
	}
	if !e.ResentAt.IsZero() {
		it["resent_at"] = str(FormatTime(e.ResentAt))
	}
	if len(e.ReminderDays) > 0 {
		it["reminder_days"] = intList(e.ReminderDays)
	}
	if due := e.DueAt(); !due.IsZero() {
		it["GSI6PK"] = str(DueIndexPK(ShardOf(e.ID)))
		it["GSI6SK"] = str(TimeSK(due, e.ID))
	}
}

func decodeEnd(it item, e *rollcall.Enrollment) {
	e.EndAt = getTime(it, "end_at")
	e.EndNoticeAt = getTime(it, "end_notice_at")
	e.EndNoticeSent = getBool(it, "end_notice_sent")
	e.RemindersSent = int(getN(it, "reminders_sent"))
	e.InvitedAt = getTime(it, "invited_at")
	e.LastSentAt = getTime(it, "last_sent_at")
	e.SendCount = int(getN(it, "send_count"))
	e.ResentAt = getTime(it, "resent_at")
	e.ReminderDays = getInts(it, "reminder_days")
}

// DueWorkPageSize is how many index entries one Query of DueWork reads.
const DueWorkPageSize = 100

// DueWork pages through the W# shards of GSI6 (enrollments by when the schedule's next work on
// them is due) for entries due at or before `before`, querying up to Parallel shards at once.
// Pages hold ids only (the caller re-reads); fn may be called from several goroutines at once.
func (s *Store) DueWork(ctx context.Context, before time.Time, fn func([]*rollcall.Enrollment) bool) error {
	return s.queryDue(ctx, dueWorkIndex, before, fn)
}

// dueWorkIndex is GSI6's W# shards: enrollments by when their next scheduled work is due
// (GSI6SK <due>#<id>); its entries project the id only.
var dueWorkIndex = dueIndex{what: "due work", name: IndexDue, pkAttr: "GSI6PK", skAttr: "GSI6SK",
	pk: DueIndexPK, decode: func(it item) *rollcall.Enrollment { return &rollcall.Enrollment{ID: getS(it, "id")} },
	pageSize: DueWorkPageSize}

func intList(xs []int) types.AttributeValue {
	l := make([]types.AttributeValue, len(xs))
	for i, x := range xs {
		l[i] = num(int64(x))
	}
	return &types.AttributeValueMemberL{Value: l}
}

func getInts(it item, k string) []int {
	l, ok := it[k].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	var out []int
	for _, v := range l.Value {
		if n, ok := v.(*types.AttributeValueMemberN); ok {
			if x, err := strconv.Atoi(n.Value); err == nil {
				out = append(out, x)
			}
		}
	}
	return out
}

// endingNoticeDays reads a course's ending_notice_days; a course stored before it existed
// has the default.
func endingNoticeDays(it item) int {
	if _, ok := it["ending_notice_days"]; !ok {
		return rollcall.DefaultEndingNoticeDays
	}
	return int(getN(it, "ending_notice_days"))
}
