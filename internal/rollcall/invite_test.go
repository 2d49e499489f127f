package rollcall

import (
	"strings"
	"testing"
	"time"
)

func TestUsernameBase(t *testing.T) {
	cases := map[string]string{
		"alice@example.com":              "alice",
		"Bob.Smith+news@example.com":     "Bob.Smith+news",
		"o'connor@example.com":           "oconnor",
		"!#$%@example.com":               "learner",
		"j\u00fcrgen_m-x@example.com":    "jrgen_m-x",
		strings.Repeat("a", 64) + "@x.y": strings.Repeat("a", MaxDerivedUsernameBase),
		"weird@local@example.com":        "weirdlocal",
	}
	for in, want := range cases {
		got := UsernameBase(in)
		if got != want {
			t.Errorf("UsernameBase(%q) = %q, want %q", in, got, want)
		}
		if !ValidUsername(got) {
			t.Errorf("UsernameBase(%q) = %q is not a valid username", in, got)
		}
	}
}

func TestUsernameCandidates(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		c := usernameCandidate("ann", i)
		if !strings.HasPrefix(c, "ann") || !ValidUsername(c) {
			t.Fatalf("candidate %d = %q", i, c)
		}
		switch i {
		case 0:
			if c != "ann" {
				t.Fatalf("first candidate = %q", c)
			}
		case 1:
			if c != "ann2" {
				t.Fatalf("second candidate = %q", c)
			}
		}
		if i < 9 && seen[c] {
			t.Fatalf("candidate %d repeats %q", i, c)
		}
		seen[c] = true
	}
	if n := len(usernameCandidate("ann", 49)) - 3; n < 6 {
		t.Errorf("late candidates should carry more digits, got %d", n)
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
