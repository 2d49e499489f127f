package rollcall

import (
	"strings"
	"testing"
)

func TestIDCodec(t *testing.T) {
	c := NewIDCodec([]byte("a key of some length"))
	store := EnrollmentID("course-v1:A+B+C", "alice@example.com")
	pub := c.Public(store)
	if !ValidEnrollmentID(pub) || pub == store || strings.HasPrefix(pub, store[:16]) {
		t.Fatalf("public id %q of %q", pub, store)
	}
	if back, ok := c.Store(pub); !ok || back != store {
		t.Fatalf("Store(%q) = %q, %v", pub, back, ok)
	}
	// The same person in another course: nothing in common with the first id.
	other := c.Public(EnrollmentID("course-v1:A+B+D", "alice@example.com"))
	if other[:8] == pub[:8] {
		t.Fatalf("ids of one person share a prefix: %s %s", pub, other)
	}
	// Another key, another id; the plain store id is not a public id of anything known.
	if NewIDCodec([]byte("another key")).Public(store) == pub {
		t.Fatalf("the id does not depend on the key")
	}
	if _, ok := c.Store("not-an-id"); ok {
		t.Fatalf("garbage decoded")
	}
}

func FuzzIDCodec(f *testing.F) {
	f.Add(EnrollmentID("course-v1:A+B+C", "a@b.co"))
	c := NewIDCodec([]byte("fuzz key"))
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := c.Store(s); ok && c.Public(id) != s {
			t.Fatalf("%q -> %q -> %q", s, id, c.Public(id))
		}
		if ValidEnrollmentID(s) {
			if back, ok := c.Store(c.Public(s)); !ok || back != s {
				t.Fatalf("round trip of %q: %q %v", s, back, ok)
			}
		}
	})
}
