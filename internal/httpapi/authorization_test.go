package httpapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/rollcall"
)

func TestParseAuthorizationHeader(t *testing.T) {
	cases := []struct {
		h, tok string
		err    error
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", nil},
		{"bearer abc", "abc", nil},
		{"BEARER   abc  ", "abc", nil},
		{"JWT abc", "abc", nil},
		{"jwt abc", "abc", nil},
		{"\tBearer\tabc", "abc", nil},
		{"", "", rollcall.ErrNoCredentials},
		{"   ", "", rollcall.ErrNoCredentials},
		{"Basic dXNlcjpwYXNz", "", rollcall.ErrNoCredentials},
		{"Token abc", "", rollcall.ErrNoCredentials},
		{"Bearerabc", "", rollcall.ErrNoCredentials},
		{"abc.def.ghi", "", rollcall.ErrNoCredentials},
		{"Bearer", "", rollcall.ErrInvalidToken},
		{"JWT ", "", rollcall.ErrInvalidToken},
		{"Bearer abc def", "", rollcall.ErrInvalidToken},
	}
	for _, c := range cases {
		tok, err := ParseAuthorizationHeader(c.h)
		if tok != c.tok || !errors.Is(err, c.err) {
			t.Errorf("ParseAuthorizationHeader(%q) = %q, %v; want %q, %v", c.h, tok, err, c.tok, c.err)
		}
	}
}

// FuzzParseAuthorizationHeader: no panics, only the two sentinel errors, and an accepted
// token is one whitespace-free field that followed a Bearer or JWT scheme.
func FuzzParseAuthorizationHeader(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "JWT abc", "bearer  abc ", "Basic dXNlcjpwYXNz",
		"", "Bearer", "Bearer a b", "\tBearer\tx", "Bearer\u00a0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := ParseAuthorizationHeader(h)
		if err != nil {
			if tok != "" || !errors.Is(err, rollcall.ErrInvalidToken) && !errors.Is(err, rollcall.ErrNoCredentials) {
				t.Fatalf("(%q, %v)", tok, err)
			}
			return
		}
		fields := strings.Fields(h)
		if tok == "" || strings.ContainsAny(tok, " \t\r\n\v\f") || !strings.HasSuffix(strings.TrimRight(h, " \t\r\n\v\f"), tok) {
			t.Fatalf("token %q from %q", tok, h)
		}
		if len(fields) == 0 || !strings.EqualFold(fields[0], "bearer") && !strings.EqualFold(fields[0], "jwt") {
			t.Fatalf("accepted %q without a Bearer/JWT scheme", h)
		}
	})
}
