package app_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Ten creates of one invitation, a second apart, owe three mails; the invitation is still
// issued each time, and the cap frees up after a day.
func TestInvitationMailCapPerAddress(t *testing.T) {
	f := newFixture(t)
	create := func() {
		t.Helper()
		r := f.do("POST", "/api/courses/"+courseKey+"/enrollments", f.staff, map[string]any{"enrollment": map[string]any{"email": "spam@example.com"}}, "")
		mustStatus(t, r, http.StatusCreated)
	}
	for i := 0; i < 10; i++ {
		create()
		f.advance(time.Second)
	}
	e := f.enrollment(t, courseKey, "spam@example.com")
	if e.MailSeq != rollcall.MaxInviteMailsPerDay || e.State != rollcall.StateInvited || e.Version != 10 {
		t.Fatalf("after ten creates: mail_seq %d, version %d, state %s", e.MailSeq, e.Version, e.State)
	}
	// Bulk enroll with email_students into another course is capped on its own.
	for i := 0; i < 5; i++ {
		f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "spam@example.com", "action": "enroll", "email_students": true, "courses": cohortCourse}, true)
		f.bulk(t, bulkPaths[0], map[string]any{"identifiers": "spam@example.com", "action": "unenroll", "courses": cohortCourse}, true)
	}
	if e := f.enrollment(t, cohortCourse, "spam@example.com"); e.MailSeq != rollcall.MaxInviteMailsPerDay {
		t.Fatalf("bulk re-invitations owed %d mails", e.MailSeq)
	}
	f.advance(24 * time.Hour)
	create()
	if e := f.enrollment(t, courseKey, "spam@example.com"); e.MailSeq != rollcall.MaxInviteMailsPerDay+1 {
		t.Fatalf("a day later: mail_seq %d", e.MailSeq)
	}
}

// A course admin who is not staff may invite at most ADMIN_DAILY_INVITES new addresses a day:
// beyond that, 429 before any write. Staff have no quota.
func TestAdminDailyInvites(t *testing.T) {
	f := newFixture(t)
	f.deps.Service.AdminDailyInvites = 5
	carol := token(t, "carol", false)
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%02d@example.com", prefix, i)
		}
		return out
	}
	r := f.bulkAs(t, bulkPaths[0], carol, map[string]any{"identifiers": ids("over", 6), "action": "enroll", "courses": cohortCourse}, true)
	mustStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After")
	}
	if _, err := f.deps.Store.GetEnrollment(context.Background(), rollcall.EnrollmentID(cohortCourse, "over00@example.com")); err == nil {
		t.Fatalf("a refused request wrote an invitation")
	}
	mustStatus(t, f.bulkAs(t, bulkPaths[0], carol, map[string]any{"identifiers": ids("ok", 4), "action": "enroll", "courses": cohortCourse}, true), http.StatusOK)
	// Re-issuing an open invitation is not a new address.
	mustStatus(t, f.bulkAs(t, bulkPaths[0], carol, map[string]any{"identifiers": ids("ok", 4), "action": "enroll", "courses": cohortCourse, "auto_enroll": true}, true), http.StatusOK)
	mustStatus(t, f.do("POST", "/api/courses/"+cohortCourse+"/enrollments", carol, map[string]any{"enrollment": map[string]any{"email": "fifth@example.com"}}, ""), http.StatusCreated)
	r = f.do("POST", "/api/courses/"+cohortCourse+"/enrollments", carol, map[string]any{"enrollment": map[string]any{"email": "sixth@example.com"}}, "")
	mustStatus(t, r, http.StatusTooManyRequests)
	// Staff are not counted.
	mustStatus(t, f.bulk(t, bulkPaths[0], map[string]any{"identifiers": ids("staff", 10), "action": "enroll", "courses": cohortCourse}, true), http.StatusOK)
	// The next day the quota is fresh.
	f.advance(24 * time.Hour)
	mustStatus(t, f.do("POST", "/api/courses/"+cohortCourse+"/enrollments", carol, map[string]any{"enrollment": map[string]any{"email": "sixth@example.com"}}, ""), http.StatusCreated)
}
