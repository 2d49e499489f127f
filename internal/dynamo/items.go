package dynamo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

type item = map[string]types.AttributeValue

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func boolean(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

func key(pk, sk string) item { return item{"PK": str(pk), "SK": str(sk)} }

func getS(it item, k string) string {
	if v, ok := it[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(it item, k string) int64 {
	if v, ok := it[k].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func getBool(it item, k string) bool {
	if v, ok := it[k].(*types.AttributeValueMemberBOOL); ok {
		return v.Value
	}
	return false
}

func getTime(it item, k string) time.Time {
	s := getS(it, k)
	if s == "" {
		return time.Time{}
	}
	t, _ := ParseTime(s)
	return t
}

func getStrings(it item, k string) []string {
	l, ok := it[k].(*types.AttributeValueMemberL)
	if !ok {
		return []string{}
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out = append(out, s.Value)
		}
	}
	return out
}

func strList(xs []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(xs))
	for i, x := range xs {
		l[i] = str(x)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// EncodeEnrollment is the item of an enrollment, with the index keys its state calls for.
func EncodeEnrollment(e *rollcall.Enrollment) item {
	pk, sk := EnrollmentKey(e.ID)
	shard := ShardOf(e.ID)
	it := item{
		"PK": str(pk), "SK": str(sk),
		"id": str(e.ID), "course_id": str(e.CourseID), "email": str(e.Email),
		"state": str(string(e.State)), "role": str(e.Role), "mode": str(e.Mode),
		"auto_enroll": boolean(e.AutoEnroll),
		"created_at":  str(FormatTime(e.CreatedAt)), "updated_at": str(FormatTime(e.UpdatedAt)),
		"ver":    num(e.Version),
		"seq":    num(e.Seq),
		"GSI1PK": str(CourseIndexPK(e.CourseID, CourseShard(CourseBlock(e.Seq)))), "GSI1SK": str(SeqSK(e.Seq)),
		"GSI4PK": str(CourseStateIndexPK(e.CourseID, e.State, shard)), "GSI4SK": str(SeqSK(e.Seq)),
	}
	if e.Username != "" {
		it["username"] = str(e.Username)
	}
	if e.Cohort != "" {
		it["cohort"] = str(e.Cohort)
	}
	if !e.ExpiresAt.IsZero() {
		it["expires_at"] = str(FormatTime(e.ExpiresAt))
	}
	if !e.AcceptedAt.IsZero() {
		it["accepted_at"] = str(FormatTime(e.AcceptedAt))
	}
	encodeEnd(it, e)
	if e.TokenHash != "" {
		it["token_hash"] = str(e.TokenHash)
	}
	if e.TokenNonce != "" {
		it["token_nonce"] = str(e.TokenNonce)
	}
	if e.TokenHash != "" {
		it["GSI3PK"] = str(TokenIndexPK(e.TokenHash))
	}
	switch {
	case e.State == rollcall.StateInvited && !e.ExpiresAt.IsZero():
		it["GSI2PK"] = str(ExpiryIndexPK(shard))
		it["GSI2SK"] = str(TimeSK(e.ExpiresAt, e.ID))
	case e.Username != "" && e.RealEnrollment():
		it["GSI2PK"] = str(RecentIndexPK(shard))
		it["GSI2SK"] = str(TimeSK(e.CreatedAt, e.ID))
	}
	if c := e.LastChange; c != nil {
		it["chg_by"] = str(c.By)
		it["chg_at"] = str(FormatTime(c.At))
		it["chg_tr"] = str(c.Transition)
		it["chg_src"] = str(c.Source)
		if c.Reason != "" {
			it["chg_reason"] = str(c.Reason)
		}
		encodeChangeSides(it, c)
	}
	if len(e.InviteMails) > 0 {
		ts := make([]string, len(e.InviteMails))
		for i, at := range e.InviteMails {
			ts[i] = FormatTime(at)
		}
		it["inv_mails"] = strList(ts)
	}
	if e.MailSeq > 0 {
		it["mail_kind"] = str(string(e.MailKind))
		it["mail_seq"] = num(e.MailSeq)
		// Sparse: only an enrollment whose latest mail may be unsent is in the owed-mail
		// index, so a write that owes no mail writes nothing there.
		if !e.MailOwedAt.IsZero() {
			it["mail_owed_at"] = str(FormatTime(e.MailOwedAt))
			it["GSI5PK"] = str(MailOwedIndexPK(shard))
			it["GSI5SK"] = str(TimeSK(e.MailOwedAt, e.ID))
		}
	}
	return it
}

// DecodeEnrollment reads an enrollment item (or its projection in GSI1/GSI2).
func DecodeEnrollment(it item) *rollcall.Enrollment {
	e := &rollcall.Enrollment{
		ID: getS(it, "id"), CourseID: getS(it, "course_id"), Email: getS(it, "email"),
		Username: getS(it, "username"), State: rollcall.State(getS(it, "state")),
		Role: getS(it, "role"), Mode: getS(it, "mode"), AutoEnroll: getBool(it, "auto_enroll"),
		Cohort: getS(it, "cohort"), CreatedAt: getTime(it, "created_at"), UpdatedAt: getTime(it, "updated_at"),
		ExpiresAt: getTime(it, "expires_at"), AcceptedAt: getTime(it, "accepted_at"), TokenHash: getS(it, "token_hash"), TokenNonce: getS(it, "token_nonce"),
		Version: getN(it, "ver"), Seq: getN(it, "seq"), MailKind: rollcall.MailKind(getS(it, "mail_kind")), MailSeq: getN(it, "mail_seq"),
		MailOwedAt: getTime(it, "mail_owed_at"),
	}
	for _, s := range getStrings(it, "inv_mails") {
		if at, err := ParseTime(s); err == nil {
			e.InviteMails = append(e.InviteMails, at)
		}
	}
	if by := getS(it, "chg_tr"); by != "" {
		e.LastChange = &rollcall.Change{By: getS(it, "chg_by"), At: getTime(it, "chg_at"), Reason: getS(it, "chg_reason"),
			Transition: getS(it, "chg_tr"), Source: getS(it, "chg_src")}
		decodeChangeSides(it, e.LastChange)
	}
	decodeEnd(it, e)
	if e.Role == "" {
		e.Role = rollcall.DefaultRole
	}
	if e.Mode == "" {
		e.Mode = rollcall.DefaultMode
	}
	return e
}

// IsEnrollment tells enrollment items from the other items of a person's partition.
func IsEnrollment(it item) bool {
	sk := getS(it, "SK")
	return len(sk) > len(pfxEnrollment) && sk[:len(pfxEnrollment)] == pfxEnrollment
}

// courseFields are a course's attributes (its item also holds the enr_seq counter, which a
// course update leaves alone).
func courseFields(c *rollcall.Course) item {
	return item{
		"course_id": str(c.ID), "title": str(c.Title), "cohorts": strList(c.Cohorts), "admins": strList(c.Admins),
		"invitation_ttl_days": num(int64(c.InvitationTTLDays)),
		"modes":               strList(c.Modes), "default_mode": str(c.EnrollmentMode()),
		"enrollment_duration_days": num(int64(c.EnrollmentDurationDays)), "ending_notice_days": num(int64(c.EndingNoticeDays)),
		"reminder_days": intList(c.ReminderDays), "require_acceptance": boolean(c.RequireAcceptance),
		"created_at": str(FormatTime(c.CreatedAt)), "updated_at": str(FormatTime(c.UpdatedAt)),
		// An organization's courses, for the email opt-in report (pattern 22).
		"GSI2PK": str(OrgIndexPK(rollcall.CourseOrg(c.ID))), "GSI2SK": str(c.ID),
	}
}

func decodeCourse(it item) *rollcall.Course {
	return decodeCourseDefaults(&rollcall.Course{ID: getS(it, "course_id"), Title: getS(it, "title"), Cohorts: getStrings(it, "cohorts"),
		Admins: getStrings(it, "admins"), InvitationTTLDays: int(getN(it, "invitation_ttl_days")),
		CreatedAt: getTime(it, "created_at"), UpdatedAt: getTime(it, "updated_at"),
		Modes: getStrings(it, "modes"), DefaultMode: getS(it, "default_mode"), RoleAdmins: getStringSet(it, "role_admins"),
		EnrollmentDurationDays: int(getN(it, "enrollment_duration_days")), EndingNoticeDays: endingNoticeDays(it),
		ReminderDays: getInts(it, "reminder_days"), RequireAcceptance: getBool(it, "require_acceptance")})
}

func encodeUser(pk string, u *rollcall.User) item {
	it := key(pk, skUser)
	it["username"] = str(u.Username)
	it["email"] = str(u.Email)
	it["created_at"] = str(FormatTime(u.CreatedAt))
	return it
}

func decodeUser(it item) *rollcall.User {
	return &rollcall.User{Username: getS(it, "username"), Email: getS(it, "email"), CreatedAt: getTime(it, "created_at"),
		Retiring: getBool(it, "retiring")}
}

func describe(it item) string { return fmt.Sprintf("%s/%s", getS(it, "PK"), getS(it, "SK")) }
