package rollcall

import "testing"

// Usernames compare in ASCII lower case only: no Unicode folding onto ASCII accounts.
func TestNormalizeUsernameASCIIOnly(t *testing.T) {
	for in, want := range map[string]string{"Alice": "alice", "KIM.o+1@x": "kim.o+1@x", "al\u0130ce": "al\u0130ce", "\u212Aim": "\u212Aim"} {
		if got := NormalizeUsername(in); got != want {
			t.Errorf("NormalizeUsername(%q) = %q, want %q", in, got, want)
		}
	}
	c := &Course{Admins: []string{"kim"}}
	if c.IsAdmin("\u212Aim") || !c.IsAdmin("KIM") {
		t.Fatalf("IsAdmin folds wrongly")
	}
	if NormalizeUsername("al\u0130ce") == NormalizeUsername("alice") {
		t.Fatalf("al\\u0130ce is alice")
	}
}
