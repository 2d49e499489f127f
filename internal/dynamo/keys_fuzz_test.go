package dynamo

import (
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// FuzzKeysFit: every value the domain's checks let through builds keys DynamoDB accepts
// (partition keys 1..2048 bytes), whatever the input: identifiers, usernames and course keys
// from paths and queries, and Idempotency-Keys with any scope.
func FuzzKeysFit(f *testing.F) {
	for _, s := range []string{"alice", "a@b.co", "course-v1:A+B+C", "A/B/C", strings.Repeat("x", 3000),
		"course-v1:" + strings.Repeat("A", 3000) + "+B+C", "al\u0130ce", ""} {
		f.Add(s)
	}
	fits := func(t *testing.T, what, k string) {
		if len(k) == 0 || len(k) > 2048 {
			t.Fatalf("%s key of %d bytes", what, len(k))
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, id := range rollcall.Resolvable([]string{s}) {
			if strings.Contains(id, "@") {
				fits(t, "email", PersonPK(id))
			} else {
				fits(t, "username", UserPK(id))
			}
		}
		if rollcall.ValidUsername(s) {
			fits(t, "user", UserPK(s))
		}
		if rollcall.ValidCourseKey(s) {
			fits(t, "course", CoursePK(s))
			fits(t, "lease", LeasePK(s))
			fits(t, "course index", CourseIndexPK(s, Shards-1))
			fits(t, "course state index", CourseStateIndexPK(s, rollcall.StateUnenrolled, Shards-1))
		}
		fits(t, "idempotency", IdempotencyPK(s+"#POST /"+s, s))
		if len(s) > rollcall.MaxIdentifierLen && len(rollcall.Resolvable([]string{s})) != 0 {
			t.Fatalf("an identifier of %d bytes is looked up", len(s))
		}
	})
}
