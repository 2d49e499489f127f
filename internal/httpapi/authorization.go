package httpapi

import (
	"fmt"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// ParseAuthorizationHeader extracts the token of an Authorization header value. It accepts
// the "Bearer" and "JWT" (sent by Open edX clients) schemes, case-insensitively. Like DRF, a
// missing header or another scheme is rollcall.ErrNoCredentials, while a right scheme with no token or
// with a token containing spaces is rollcall.ErrInvalidToken.
func ParseAuthorizationHeader(h string) (string, error) {
	// DRF splits on ASCII whitespace (bytes.split); do the same rather than Unicode spaces.
	f := strings.FieldsFunc(h, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
	if len(f) == 0 || !(strings.EqualFold(f[0], "bearer") || strings.EqualFold(f[0], "jwt")) {
		return "", rollcall.ErrNoCredentials
	}
	switch len(f) {
	case 1:
		return "", fmt.Errorf("%w: no token after %q", rollcall.ErrInvalidToken, f[0])
	case 2:
		return f[1], nil
	default:
		return "", fmt.Errorf("%w: token contains spaces", rollcall.ErrInvalidToken)
	}
}
