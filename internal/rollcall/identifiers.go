package rollcall

import (
	"net/mail"
	"regexp"
	"strings"
	"sync"
)

// SplitList splits a comma/whitespace/newline separated list, dropping empty entries, as
// Open edX's _split_input_list does for identifiers.
func SplitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' || r == '\v' || r == '\f'
	})
}

// SplitCommaList splits a comma-separated list (courses, cohorts), trimming spaces and
// dropping empty entries.
func SplitCommaList(s string) []string {
	parts := strings.Split(s, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Django's EmailValidator, simplified to what matters here: a dot-atom (or quoted) local part,
// and a domain of dot-separated labels with a TLD of letters (or a literal IP in brackets).
// The patterns are compiled on first use, not at package load: every function's cold start
// would pay for them, and most never validate an email.
var (
	emailUser   = lazyRegexp(`^[-!#$%&'*+/=?^_` + "`" + `{}|~0-9A-Za-z]+(\.[-!#$%&'*+/=?^_` + "`" + `{}|~0-9A-Za-z]+)*$`)
	emailDomain = lazyRegexp(`^((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+)(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9]{1,59})$`)
)

// maxEmailLen is the longest address a mailbox can have (RFC 5321 path limit).
const maxEmailLen = 254

// ValidEmail reports whether s is a plausible email address (Django EmailValidator rules).
func ValidEmail(s string) bool {
	if len(s) == 0 || len(s) > maxEmailLen || strings.ContainsAny(s, " \t\r\n<>\"") {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	user, domain := s[:at], s[at+1:]
	if len(user) > 64 || !emailUser().MatchString(user) || !emailDomain().MatchString(domain) {
		return false
	}
	// A last guard against inputs the regexps accept but a mail library would not.
	_, err := mail.ParseAddress(s)
	return err == nil
}

// NormalizeEmail is the form an email is keyed and compared by (case-insensitive).
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

var usernamePattern = lazyRegexp(`^[A-Za-z0-9_.@+-]{1,150}$`)

// ValidUsername reports whether s is an acceptable username (Django's username rules).
func ValidUsername(s string) bool { return usernamePattern().MatchString(s) }

// NormalizeUsername is the form a username is keyed and compared by: ASCII lower case only.
// strings.ToLower would fold some non-ASCII letters onto ASCII ones (U+0130 onto "i", the
// Kelvin sign U+212A onto "k"), making "al\u0130ce" the same account as "alice".
func NormalizeUsername(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// MaxIdentifierLen is the longest identifier looked up: an email is at most 254 characters and
// a username 150; anything longer is an invalidIdentifier without a store call.
const MaxIdentifierLen = maxEmailLen

// Resolvable is the distinct identifiers that could name an account: a valid username, or
// something with '@' of at most MaxIdentifierLen (looked up as an email). Nothing else is
// looked up, so no value reaches the store as a key it would refuse.
func Resolvable(identifiers []string) []string {
	out := make([]string, 0, len(identifiers))
	for _, id := range dedupe(identifiers) {
		if len(id) <= MaxIdentifierLen && (ValidUsername(id) || strings.Contains(id, "@")) {
			out = append(out, id)
		}
	}
	return out
}

// lazyRegexp compiles a pattern on first use (once, safely from any goroutine).
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
