package rollcall

import (
	"encoding/base64"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fixtures of the cursor tests and FuzzDecodeCursor (the committed seeds were made with them).
var (
	testCursorKey      = CursorKey([]byte("test-signing-secret-0123456789abcdef"))
	testCursorScope    = ListScope("course", "course-v1:Org+Num+Run", "")
	testCursorBoundary = Boundary{CreatedAt: time.Date(2025, 3, 9, 20, 15, 1, 123456000, time.UTC),
		ID: EnrollmentID("course-v1:Org+Num+Run", "ada@example.com")}
)

func TestCursorRoundTrip(t *testing.T) {
	c := EncodeCursor(testCursorKey, testCursorScope, testCursorBoundary)
	if len(c) != CursorLen {
		t.Fatalf("len %d, want %d", len(c), CursorLen)
	}
	if strings.ContainsAny(c, "+/=") {
		t.Fatalf("cursor %q is not URL-safe", c)
	}
	b, err := DecodeCursor(testCursorKey, testCursorScope, c)
	if err != nil {
		t.Fatal(err)
	}
	if !b.CreatedAt.Equal(testCursorBoundary.CreatedAt) || b.ID != testCursorBoundary.ID {
		t.Fatalf("got %+v, want %+v", b, testCursorBoundary)
	}
	// Times are kept to the microsecond, as the store keeps them.
	nano := testCursorBoundary
	nano.CreatedAt = nano.CreatedAt.Add(789)
	b, _ = DecodeCursor(testCursorKey, testCursorScope, EncodeCursor(testCursorKey, testCursorScope, nano))
	if !b.CreatedAt.Equal(testCursorBoundary.CreatedAt) {
		t.Fatalf("got %v", b.CreatedAt)
	}
}

func TestCursorRejects(t *testing.T) {
	good := EncodeCursor(testCursorKey, testCursorScope, testCursorBoundary)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		r := append([]byte(nil), raw...)
		r[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(r)
	}
	cases := map[string]struct {
		key   []byte
		scope string
		c     string
	}{
		"empty":          {testCursorKey, testCursorScope, ""},
		"garbage":        {testCursorKey, testCursorScope, "not-a-cursor"},
		"truncated":      {testCursorKey, testCursorScope, good[:len(good)-1]},
		"extended":       {testCursorKey, testCursorScope, good + "A"},
		"padded":         {testCursorKey, testCursorScope, good + "="},
		"std alphabet":   {testCursorKey, testCursorScope, strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+"},
		"version":        {testCursorKey, testCursorScope, flip(0)},
		"time":           {testCursorKey, testCursorScope, flip(5)},
		"id":             {testCursorKey, testCursorScope, flip(20)},
		"tag":            {testCursorKey, testCursorScope, flip(len(raw) - 1)},
		"other scope":    {testCursorKey, ListScope("course", "course-v1:Org+Num+Run", "active"), good},
		"other list":     {testCursorKey, ListScope("so2", "course-v1:Org+Num+Run", "", "", ""), good},
		"other secret":   {CursorKey([]byte("another-secret-0123456789abcdef!")), testCursorScope, good},
		"raw secret key": {[]byte("test-signing-secret-0123456789abcdef"), testCursorScope, good},
	}
	for name, tc := range cases {
		if _, err := DecodeCursor(tc.key, tc.scope, tc.c); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("%s: err %v, want ErrInvalidCursor", name, err)
		}
	}
	// The last base64 character carries 2 spare bits; a cursor with them set is not ours.
	last := strings.IndexByte(b64alphabet, good[len(good)-1])
	for bits := 1; bits < 4; bits++ {
		c := good[:len(good)-1] + string(b64alphabet[last^bits])
		if _, err := DecodeCursor(testCursorKey, testCursorScope, c); err == nil {
			t.Errorf("spare bits %d accepted", bits)
		}
	}
}

const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestListScopeUnambiguous(t *testing.T) {
	if ListScope("a", "bc") == ListScope("ab", "c") || ListScope("a", "") == ListScope("a") {
		t.Fatal("scopes collide")
	}
}

func TestCursorKeyIsDerived(t *testing.T) {
	secret := []byte("test-signing-secret-0123456789abcdef")
	if string(CursorKey(secret)) == string(secret) || len(CursorKey(secret)) != 32 {
		t.Fatal("cursor key must be derived from, not equal to, the secret")
	}
}

// The committed "valid" seed of FuzzDecodeCursor must stay a valid cursor, or the fuzzer
// would never reach the accepting path from it.
func TestCursorSeedValidIsAccepted(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzDecodeCursor/valid")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "string("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeCursor(testCursorKey, testCursorScope, s); err != nil {
		t.Fatalf("seed %q: %v", s, err)
	}
}
