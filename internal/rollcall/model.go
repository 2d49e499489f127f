package rollcall

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"time"
)

// Course is a course that learners can be enrolled in.
type Course struct {
	ID                string   `json:"course_id"`
	Title             string   `json:"title"`
	Cohorts           []string `json:"cohorts"`
	Admins            []string `json:"admins"`
	InvitationTTLDays int      `json:"invitation_ttl_days"`
	// EnrollmentDurationDays (0: none) gives new enrollments an end date that many days out;
	// EndingNoticeDays is how long before the end the enrollment_ending mail goes out.
	EnrollmentDurationDays int `json:"enrollment_duration_days"`
	EndingNoticeDays       int `json:"ending_notice_days"`
	// ReminderDays are the days after an invitation that a reminder mail goes out while it
	// is open (each once).
	ReminderDays []int `json:"reminder_days"`
	// RequireAcceptance: registered users are invited (and accept) rather than enrolled.
	RequireAcceptance bool `json:"require_acceptance"`
	// Modes are the enrollment modes the course offers (default ["audit"]) and DefaultMode the
	// one an enrollment gets unless the request names one.
	Modes       []string  `json:"modes"`
	DefaultMode string    `json:"default_mode"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	// RoleAdmins are the usernames whose active ta or instructor enrollment makes them admins
	// of the course. The audit function keeps the set from the table's stream, so checking a
	// permission reads nothing more than the course.
	RoleAdmins []string `json:"-"`
}

// MaxCourseItemBytes bounds a course's stored size (DynamoDB refuses items over 400 KB; the
// rest is room for the attribute names and counters).
const MaxCourseItemBytes = 350_000

// approxItemBytes is about what the course's item takes in the table (an upper bound).
func (c *Course) approxItemBytes() int {
	n := 2*len(c.ID) + len(c.Title) + 300
	for _, x := range c.Cohorts {
		n += len(x) + 3
	}
	for _, x := range c.Admins {
		n += len(x) + 3
	}
	for _, x := range c.Modes {
		n += len(x) + 3
	}
	return n
}

// DefaultInvitationTTLDays applies when a course does not set its own.
const DefaultInvitationTTLDays = 14

// HasCohort reports whether name is one of the course's cohorts.
func (c *Course) HasCohort(name string) bool { return slices.Contains(c.Cohorts, name) }

// IsAdmin reports whether username administers the course (case-insensitive, as usernames are).
// An active ta or instructor enrollment makes its user an admin too (RoleAdmins).
func (c *Course) IsAdmin(username string) bool {
	if username == "" {
		return false
	}
	for _, list := range [][]string{c.Admins, c.RoleAdmins} {
		for _, a := range list {
			if NormalizeUsername(a) == NormalizeUsername(username) {
				return true
			}
		}
	}
	return false
}

// OffersMode reports whether the course offers mode (a course that names none offers audit).
func (c *Course) OffersMode(mode string) bool {
	if len(c.Modes) == 0 {
		return mode == DefaultMode
	}
	return slices.Contains(c.Modes, mode)
}

// EnrollmentMode is the mode an enrollment gets unless the request names one.
func (c *Course) EnrollmentMode() string {
	if c == nil || c.DefaultMode == "" {
		return DefaultMode
	}
	return c.DefaultMode
}

// InvitationTTL is how long an invitation into this course stays open.
func (c *Course) InvitationTTL() time.Duration {
	days := c.InvitationTTLDays
	if days <= 0 {
		days = DefaultInvitationTTLDays
	}
	return time.Duration(days) * 24 * time.Hour
}

// User is a registered account.
type User struct {
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	// Retiring: the account asked to be retired (docs/api.md#retirement); it can no longer
	// be enrolled or invited.
	Retiring bool `json:"-"`
}

// Actor is who makes a request, from a verified token.
type Actor struct {
	Username string
	Email    string
	Staff    bool
	// RetirementService: the token carries retirement_service: true (the retirement driver).
	RetirementService bool
}

// RequireStaff is the permission of the staff-only operations (courses, users): ErrForbidden
// for anyone else. The HTTP layer asks it before reading a body too, so that a caller who may
// not learns nothing about that body (a 403, never a 400).
func (a Actor) RequireStaff() error {
	if !a.Staff {
		return ErrForbidden
	}
	return nil
}

// State is where an enrollment is in its life.
type State string

// The states of an enrollment (docs/api.md#listing). Redu's waiting/redu_invited/invited map to
// invited, approved to active, rejected to declined.
const (
	StateInvited    State = "invited"
	StateActive     State = "active"
	StateDeclined   State = "declined"
	StateExpired    State = "expired"
	StateUnenrolled State = "unenrolled"
	// StateCompleted is an enrollment that ended at its end date (is_active false).
	StateCompleted State = "completed"
)

// ValidState reports whether s names a state.
func ValidState(s string) bool {
	switch State(s) {
	case StateInvited, StateActive, StateDeclined, StateExpired, StateUnenrolled, StateCompleted:
		return true
	}
	return false
}

// MailKind names the mail an enrollment change owes; the names are the template suffixes.
type MailKind string

const (
	MailEnrolled   MailKind = "enrolled"
	MailInvited    MailKind = "invited"
	MailUnenrolled MailKind = "unenrolled"
	// MailEnrollmentEnding is the notice sent ending_notice_days before an enrollment's end.
	MailEnrollmentEnding MailKind = "enrollment_ending"
	// MailReminder reminds an invitee of an open invitation (the course's reminder_days).
	MailReminder MailKind = "reminder"
	// MailJobFinished tells a roster job's creator that it ended (sent by the mailer from the
	// job item's final write, owed by no enrollment).
	MailJobFinished MailKind = "job_finished"
)

// Change is the audit record of one enrollment change; the item carries its latest change and
// the audit function turns each into an entry.
type Change struct {
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	Reason     string    `json:"reason,omitempty"`
	Transition string    `json:"transition"`
	Source     string    `json:"source"` // bulk_enroll, api, invitation, registration, expiry
	// From and To name the two sides of Transition when they are not an enrollment state
	// (a mode, a role, a cohort, an end date); empty for the state transitions.
	From, To string `json:"-"`
	// More are further changes made by the same write (a PATCH of several fields): each is
	// an audit entry of its own.
	More []Step `json:"-"`
}

// Step is one change among several made by one write.
type Step struct {
	Transition, From, To string
}

// Enrollment is one person's relation to one course: an open invitation, an active
// enrollment, or what is left after it ended. It is keyed by (course, email).
type Enrollment struct {
	ID         string
	CourseID   string
	Email      string // normalized
	Username   string // empty while the person has no account
	State      State
	Role       string
	Mode       string
	AutoEnroll bool
	Cohort     string // empty = none
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time // open invitations only (not those accepted pending sign-up)
	EndAt      time.Time // when the enrollment ends (zero: it does not)
	// EndNoticeAt is when the enrollment_ending mail is due (EndAt less the course's
	// ending_notice_days); EndNoticeSent that it was owed once already.
	EndNoticeAt   time.Time
	EndNoticeSent bool
	// InvitedAt is when the open invitation was made; ReminderDays (copied from the course
	// then) are the days after it that a reminder goes out, RemindersSent how many did.
	InvitedAt     time.Time
	ReminderDays  []int
	RemindersSent int
	// LastSentAt and SendCount are the latest invitation mail owed and how many were;
	// ResentAt is the latest resend (one a day).
	LastSentAt time.Time
	SendCount  int
	ResentAt   time.Time
	AcceptedAt time.Time // an open invitation accepted pending sign-up (its token is used)

	// TokenHash is base64url(SHA-256(token)) of the latest invitation (kept after it ends, so
	// an old link answers 410); TokenNonce, only while it is open, lets holders of the signing
	// secret re-derive the token to mail it (the token itself is never stored).
	TokenHash  string
	TokenNonce string

	Version int64 // incremented on every write; 0 = not stored yet

	// Seq is the enrollment's place in its course's creation order (1, 2, ...), assigned by
	// the store when the enrollment is first written; course lists are ordered by it.
	Seq int64

	LastChange *Change
	MailKind   MailKind // the latest mail owed, if MailSeq > 0
	MailSeq    int64    // incremented whenever a change owes mail
	// MailOwedAt is when the change that owes mail MailSeq was made, while that mail may still
	// be unsent; the mailer clears it once the mail is dealt with. Zero: nothing owed.
	MailOwedAt time.Time

	// InviteMails are when the invitation mails of the last 24 hours were owed (at most
	// MaxInviteMailsPerDay): a change that would owe one more still happens, without the mail.
	InviteMails []time.Time
	// MailSkipped reports (not stored) that the latest change owed an invitation mail that
	// the daily cap skipped.
	MailSkipped bool
}

// MaxInviteMailsPerDay is how many invitation mails one address gets for one course in 24 h.
const MaxInviteMailsPerDay = 3

// RealEnrollment reports the states of a real enrollment (not an invitation): the so2 list
// shows them for registered users.
func (e *Enrollment) RealEnrollment() bool {
	return e.State == StateActive || e.State == StateUnenrolled || e.State == StateCompleted
}

// Registered reports whether the enrollment belongs to an account.
func (e *Enrollment) Registered() bool { return e.Username != "" }

// Open reports whether e is an invitation that can still be answered (it may be past expiry
// if the expiry job has not run yet; see Service for that check).
func (e *Enrollment) Open() bool { return e.State == StateInvited }

// IsActive is the so2 is_active flag.
func (e *Enrollment) IsActive() bool { return e.State == StateActive }

// DefaultMode and DefaultRole are what enrollments get unless set.
const (
	DefaultMode = "audit"
	DefaultRole = "student"
)

// Hash16 is the 96-bit base64url digest used in ids and keys.
func Hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// PersonHash identifies the person behind an email.
func PersonHash(email string) string { return Hash16(NormalizeEmail(email)) }

// EnrollmentID is the stable, opaque id of (course, email): 32 base64url characters, the
// person's hash then the course's, so that the store can find the item from the id alone.
func EnrollmentID(courseID, email string) string {
	return PersonHash(email) + Hash16(courseID)
}

// ValidEnrollmentID reports whether s has the shape of an enrollment id.
func ValidEnrollmentID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
