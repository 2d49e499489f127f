package rollcall

import (
	"errors"
	"testing"
)

// FuzzDecodeCursor: decoding never panics; whatever it accepts is exactly what EncodeCursor
// makes of the boundary it returns (so nothing but our own cursors verifies, and there is one
// spelling of each); and a single changed character is always refused.
func FuzzDecodeCursor(f *testing.F) {
	good := EncodeCursor(testCursorKey, testCursorScope, testCursorBoundary)
	f.Add(good)
	f.Add(good[:40])
	f.Add("")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeCursor(testCursorKey, testCursorScope, s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("error %v is not ErrInvalidCursor", err)
			}
			return
		}
		if again := EncodeCursor(testCursorKey, testCursorScope, b); again != s {
			t.Fatalf("accepted %q, which encodes as %q", s, again)
		}
		if !ValidEnrollmentID(b.ID) {
			t.Fatalf("accepted id %q", b.ID)
		}
		for i := range s {
			for _, c := range []byte{'A', 'z', '-', '_'} {
				if s[i] == c {
					continue
				}
				m := s[:i] + string(c) + s[i+1:]
				if _, err := DecodeCursor(testCursorKey, testCursorScope, m); err == nil {
					t.Fatalf("accepted %q, a one-character change of %q", m, s)
				}
			}
		}
		if _, err := DecodeCursor(testCursorKey, ListScope("other"), s); err == nil {
			t.Fatalf("accepted %q in another scope", s)
		}
	})
}
