package rollcall

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestEnrollTransitions(t *testing.T) {
	course := &Course{ID: "course-v1:A+B+C", InvitationTTLDays: 7}
	user := &User{Username: "alice", Email: "alice@example.com"}
	ed := Edit{Actor: "staff", Now: t0, Course: course, EmailOwed: true, Source: SourceBulk}

	// Registered, nothing before: enrolled, mail owed.
	e, changed := Enroll(nil, course.ID, user.Email, user, ed)
	if !changed || e.State != StateActive || e.LastChange.Transition != UnenrolledToEnrolled || e.MailKind != MailEnrolled || e.MailSeq != 1 || e.Version != 1 {
		t.Fatalf("enroll registered: %+v %+v", e, e.LastChange)
	}
	// Again: a no-op.
	if _, changed := Enroll(e, course.ID, user.Email, user, ed); changed {
		t.Fatal("re-enroll should be a no-op")
	}
	// Cohort change on an active enrollment: a change without mail.
	ed2 := ed
	ed2.Cohort, ed2.SetCohort = "c1", true
	e2, changed := Enroll(e, course.ID, user.Email, user, ed2)
	if !changed || e2.Cohort != "c1" || e2.LastChange.Transition != EnrolledToEnrolled || e2.MailSeq != 1 {
		t.Fatalf("cohort change: %+v", e2)
	}
	// Unenroll.
	e3, changed := Unenroll(e2, ed)
	if !changed || e3.State != StateUnenrolled || e3.LastChange.Transition != EnrolledToUnenrolled || e3.MailKind != MailUnenrolled || e3.MailSeq != 2 {
		t.Fatalf("unenroll: %+v", e3)
	}
	if _, changed := Unenroll(e3, ed); changed {
		t.Fatal("unenroll twice should be a no-op")
	}
}

func TestInvitationLifecycle(t *testing.T) {
	course := &Course{ID: "course-v1:A+B+C", InvitationTTLDays: 7}
	ed := Edit{Actor: "staff", Now: t0, Course: course, AutoEnroll: true, Source: SourceBulk}
	inv, changed := Enroll(nil, course.ID, "New@Example.com", nil, ed)
	if !changed || inv.State != StateInvited || inv.Email != "new@example.com" || !inv.AutoEnroll || inv.TokenNonce == "" || !inv.ExpiresAt.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("invite: %+v", inv)
	}
	if inv.MailSeq != 0 {
		t.Fatal("no mail without email_students")
	}
	snap := SnapshotOf(inv, false, t0)
	if !snap.Allowed || !snap.AutoEnroll || snap.Enrollment || snap.User {
		t.Fatalf("snapshot: %+v", snap)
	}
	// Past expiry it reads as expired and can be invited again.
	later := t0.Add(8 * 24 * time.Hour)
	if inv.Effective(later) != StateExpired {
		t.Fatal("should read as expired")
	}
	if _, err := Accept(inv, &User{Username: "n"}, Edit{Now: later}); !errors.Is(err, ErrInvitationExpired) {
		t.Fatalf("accept expired: %v", err)
	}
	// Accept in time.
	acc, err := Accept(inv, &User{Username: "n", Email: "new@example.com"}, Edit{Now: t0.Add(time.Hour), Source: SourceInvitation})
	if err != nil || acc.State != StateActive || acc.TokenHash != "" || acc.Username != "n" || acc.LastChange.Transition != AllowedToEnrolled {
		t.Fatalf("accept: %+v %v", acc, err)
	}
	if _, err := Accept(acc, &User{Username: "n"}, Edit{Now: t0}); err != ErrInvitationInvalid {
		t.Fatalf("second accept: %v", err)
	}
	// Revoke by unenroll.
	rev, changed := Unenroll(inv, Edit{Now: t0})
	if !changed || rev.State != StateUnenrolled || rev.LastChange.Transition != AllowedToUnenrolled || rev.TokenNonce != "" {
		t.Fatalf("revoke: %+v", rev)
	}
	if _, err := Decline(rev, Edit{Now: t0}); err != ErrInvitationInvalid {
		t.Fatalf("decline revoked: %v", err)
	}
	// Expiry job.
	exp, changed := Expire(inv, Edit{Now: later, Source: SourceExpiry})
	if !changed || exp.State != StateExpired || exp.LastChange.Transition != AllowedToExpired {
		t.Fatalf("expire: %+v", exp)
	}
	if _, changed := Expire(inv, Edit{Now: t0}); changed {
		t.Fatal("not yet expired")
	}
	// Registration: auto-enroll converts, others carry the user.
	reg, changed := Register(inv, &User{Username: "n"}, Edit{Now: t0})
	if !changed || reg.State != StateActive || reg.Username != "n" {
		t.Fatalf("register auto: %+v", reg)
	}
	inv.AutoEnroll = false
	reg, changed = Register(inv, &User{Username: "n"}, Edit{Now: t0})
	if !changed || reg.State != StateInvited || reg.Username != "n" {
		t.Fatalf("register plain: %+v", reg)
	}
}

func TestTokens(t *testing.T) {
	tok := InvitationToken([]byte("secret"), "id", NewTokenNonce())
	if !ValidTokenShape(tok) || len(TokenHash(tok)) != 43 {
		t.Fatalf("token %q", tok)
	}
	if InvitationToken([]byte("other"), "id", "n") == InvitationToken([]byte("secret"), "id", "n") {
		t.Fatal("token must depend on the secret")
	}
	id := EnrollmentID("course-v1:A+B+C", "Bob@Example.com")
	if !ValidEnrollmentID(id) || id != EnrollmentID("course-v1:A+B+C", "bob@example.com") {
		t.Fatalf("id %q", id)
	}
}
