package rollcall

import (
	"testing"
	"time"
)

// An invitation accepted pending sign-up keeps its place (invited, auto-enroll, no expiry),
// its token is used, a later bulk enroll without auto_enroll keeps it auto-enroll, and
// registering the email activates it.
func TestAcceptPending(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	inv, _ := Enroll(nil, "course-v1:A+B+C", "a@example.com", nil, Edit{Actor: "staff", Source: SourceBulk, Now: now})
	p, err := AcceptPending(inv, Edit{Actor: "a@example.com", Source: SourceInvitation, Now: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if p.State != StateInvited || !p.AutoEnroll || p.AcceptedAt.IsZero() || !p.ExpiresAt.IsZero() || p.TokenHash != inv.TokenHash {
		t.Fatalf("pending = %+v", p)
	}
	if _, err := AcceptPending(p, Edit{Now: now.Add(2 * time.Hour)}); err != ErrInvitationInvalid {
		t.Fatalf("second accept: %v", err)
	}
	if _, err := Decline(p, Edit{Now: now.Add(2 * time.Hour)}); err != ErrInvitationInvalid {
		t.Fatalf("decline after accept: %v", err)
	}
	if p.Effective(now.AddDate(1, 0, 0)) != StateInvited {
		t.Fatalf("a pending acceptance expired")
	}
	again, changed := Enroll(p, p.CourseID, p.Email, nil, Edit{Actor: "staff", Source: SourceBulk, Now: now.Add(3 * time.Hour)})
	if changed || !again.AutoEnroll {
		t.Fatalf("re-enroll without auto_enroll: changed=%v %+v", changed, again)
	}
	reg, ok := Register(p, &User{Username: "a", Email: "a@example.com"}, Edit{Actor: "a", Source: SourceRegistration, Now: now.Add(4 * time.Hour)})
	if !ok || reg.State != StateActive || reg.Username != "a" || !reg.AcceptedAt.IsZero() {
		t.Fatalf("registered = %+v", reg)
	}
}

func TestAuditEntryOf(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	inv, _ := Enroll(nil, "course-v1:A+B+C", "a@example.com", nil, Edit{Actor: "staff", Reason: "why", Source: SourceBulk, Now: now})
	e := AuditEntryOf(nil, inv)
	if e == nil || e.StateBefore != "" || e.StateAfter != StateInvited || e.Transition != UnenrolledToAllowed || e.By != "staff" ||
		e.Reason != "why" || e.Version != 1 || !e.At.Equal(now) || e.EnrollmentID != inv.ID {
		t.Fatalf("entry = %+v", e)
	}
	acc, err := Accept(inv, &User{Username: "a", Email: "a@example.com"}, Edit{Actor: "a", Source: SourceInvitation, Now: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e = AuditEntryOf(inv, acc)
	if e == nil || e.StateBefore != StateInvited || e.StateAfter != StateActive || e.Transition != AllowedToEnrolled || e.Version != 2 {
		t.Fatalf("entry = %+v", e)
	}
	if AuditEntryOf(acc, acc) != nil {
		t.Errorf("a write that did not advance the version made an entry")
	}
	if AuditEntryOf(acc, nil) != nil {
		t.Errorf("a removal made an entry")
	}
}
