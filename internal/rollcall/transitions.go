package rollcall

import "time"

// Transition labels, as Open edX's ManualEnrollmentAudit writes them.
const (
	UnenrolledToEnrolled        = "from unenrolled to enrolled"
	UnenrolledToAllowed         = "from unenrolled to allowed to enroll"
	AllowedToEnrolled           = "from allowed to enroll to enrolled"
	AllowedToAllowed            = "from allowed to enroll to allowed to enroll"
	EnrolledToEnrolled          = "from enrolled to enrolled"
	EnrolledToUnenrolled        = "from enrolled to unenrolled"
	AllowedToUnenrolled         = "from allowed to enroll to unenrolled"
	AllowedToDeclined           = "from allowed to enroll to declined"
	AllowedToExpired            = "from allowed to enroll to expired"
	SourceBulk                  = "bulk_enroll"
	SourceJob                   = "job"
	SourceAPI                   = "api"
	SourceInvitation            = "invitation"
	SourceRegistration          = "registration"
	SourceExpiry                = "expiry"
	defaultInvitationNonceBytes = 16
)

// Effective returns the state as of now: an open invitation past its expiry counts as expired
// even before the expiry job has marked it.
func (e *Enrollment) Effective(now time.Time) State {
	if e == nil {
		return ""
	}
	if e.State == StateInvited && !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt) {
		return StateExpired
	}
	return e.State
}

// SnapshotOf is the Open edX view of an enrollment (nil = none) for a person who is or is not
// registered.
func SnapshotOf(e *Enrollment, registered bool, now time.Time) Snapshot {
	s := Snapshot{User: registered}
	if e == nil {
		return s
	}
	switch e.Effective(now) {
	case StateActive:
		s.Enrollment = true
	case StateInvited:
		s.Allowed = true
		s.AutoEnroll = e.AutoEnroll
	}
	if e.Cohort != "" {
		c := e.Cohort
		s.Cohort = &c
	}
	if e.Effective(now) == StateActive || e.Effective(now) == StateInvited {
		r := e.Role
		s.Role = &r
	}
	return s
}

// Edit describes a change to apply to one enrollment.
type Edit struct {
	Actor      string
	Reason     string
	Source     string
	Now        time.Time
	EmailOwed  bool // email_students: a real change owes mail
	Cohort     string
	SetCohort  bool
	AutoEnroll bool
	Course     *Course
	Role       string    // the role to give ("" = keep, or the default for a new enrollment)
	Mode       string    // the mode to give ("" = keep, or the course's default for a new one)
	EndAt      time.Time // the end date to give (zero = keep, or the course's duration for a new one)
	// InviteRegistered: a registered user who is not enrolled gets an invitation to accept.
	InviteRegistered bool
}

// newEnrollment is the zero state of (course, email) before anything happened.
func newEnrollment(courseID, email string, now time.Time) *Enrollment {
	return &Enrollment{
		ID:        EnrollmentID(courseID, email),
		CourseID:  courseID,
		Email:     NormalizeEmail(email),
		State:     StateUnenrolled,
		Role:      DefaultRole,
		Mode:      DefaultMode,
		CreatedAt: now,
	}
}

// Enroll applies the bulk "enroll" action to cur (nil = no enrollment yet) for a person with
// the given email and user (nil = not registered). It returns the next state and whether it
// differs; cur is not modified.
func Enroll(cur *Enrollment, courseID, email string, user *User, ed Edit) (*Enrollment, bool) {
	next := cloneOrNew(cur, courseID, email, ed.Now)
	if cur == nil && ed.Course != nil {
		next.Mode = ed.Course.EnrollmentMode()
	}
	eff := cur.Effective(ed.Now)
	cohortChanged := ed.SetCohort && next.Cohort != ed.Cohort
	if ed.SetCohort {
		next.Cohort = ed.Cohort
	}
	// A role or mode the request names changes an existing enrollment too; each such change
	// is an audit entry of its own.
	var fields []Step
	if ed.Role != "" && next.Role != ed.Role {
		if cur != nil {
			fields = append(fields, fieldChange(next.Role, ed.Role))
		}
		next.Role = ed.Role
	}
	if ed.Mode != "" && next.Mode != ed.Mode {
		if cur != nil {
			fields = append(fields, fieldChange(next.Mode, ed.Mode))
		}
		next.Mode = ed.Mode
	}
	if end := ed.endFor(eff); !end.IsZero() && !end.Equal(next.EndAt) {
		if cur != nil {
			fields = append(fields, fieldChange(timeText(next.EndAt), timeText(end)))
		}
		next.setEnd(end, ed.Course)
	}
	if user != nil && ed.InviteRegistered && eff != StateActive {
		next.Username = user.Username
		if eff == StateInvited {
			autoEnroll := ed.AutoEnroll || !cur.AcceptedAt.IsZero()
			stateChanged := next.AutoEnroll != autoEnroll || cohortChanged || cur.Username != user.Username
			if !stateChanged && len(fields) == 0 {
				return cur, false
			}
			next.AutoEnroll = autoEnroll
			next.recordWith(ed, stateChanged, AllowedToAllowed, fields)
			return next, true
		}
		next.invite(ed)
		next.record(ed, UnenrolledToAllowed, mailIf(ed.EmailOwed, MailInvited))
		next.LastChange.More = fields
		return next, true
	}
	if user != nil {
		next.Username = user.Username
		if eff == StateActive {
			if !cohortChanged && len(fields) == 0 {
				return cur, false
			}
			next.recordWith(ed, cohortChanged, EnrolledToEnrolled, fields)
			return next, true
		}
		from := UnenrolledToEnrolled
		switch eff {
		case StateInvited:
			from = AllowedToEnrolled
		case StateCompleted:
			from = CompletedToEnrolled
		}
		if !next.EndAt.IsZero() && !next.EndAt.After(ed.Now) {
			next.setEnd(time.Time{}, ed.Course) // an end that has passed would complete it again at once
		}
		next.activate()
		next.record(ed, from, mailIf(ed.EmailOwed, MailEnrolled))
		next.LastChange.More = fields
		return next, true
	}
	if eff == StateInvited {
		// An invitation accepted pending sign-up stays auto-enroll: the learner said yes.
		autoEnroll := ed.AutoEnroll || !cur.AcceptedAt.IsZero()
		stateChanged := next.AutoEnroll != autoEnroll || cohortChanged
		if !stateChanged && len(fields) == 0 {
			return cur, false
		}
		next.AutoEnroll = autoEnroll
		next.recordWith(ed, stateChanged, AllowedToAllowed, fields)
		return next, true
	}
	if eff == StateActive {
		// An active enrollment whose account is gone: nothing to invite.
		return cur, false
	}
	next.invite(ed)
	next.record(ed, UnenrolledToAllowed, mailIf(ed.EmailOwed, MailInvited))
	next.LastChange.More = fields
	return next, true
}

// recordWith stamps a change that keeps the state: the state's own transition (when the
// state's details changed) and the field changes, each an audit entry.
func (e *Enrollment) recordWith(ed Edit, stateChanged bool, transition string, fields []Step) {
	var steps []Step
	if stateChanged || len(fields) == 0 {
		steps = append(steps, Step{Transition: transition})
	}
	e.recordSteps(ed, append(steps, fields...))
}

// Unenroll applies the bulk "unenroll" action: an active enrollment ends, an open invitation is
// revoked; anything else is left alone.
func Unenroll(cur *Enrollment, ed Edit) (*Enrollment, bool) {
	var from string
	switch cur.Effective(ed.Now) {
	case StateActive:
		from = EnrolledToUnenrolled
	case StateInvited:
		from = AllowedToUnenrolled
	default:
		return cur, false
	}
	next := cur.clone()
	next.State = StateUnenrolled
	next.clearInvitation()
	next.record(ed, from, mailIf(ed.EmailOwed, MailUnenrolled))
	return next, true
}

// Accept turns an open invitation into an active enrollment for user.
func Accept(cur *Enrollment, user *User, ed Edit) (*Enrollment, error) {
	if err := answerable(cur, ed.Now); err != nil {
		return nil, err
	}
	next := cur.clone()
	next.Username = user.Username
	next.activate()
	next.record(ed, AllowedToEnrolled, "")
	return next, nil
}

// AcceptPending accepts an open invitation for an email that has no account yet: it stays
// invited, becomes auto-enroll (so that registering the email activates it) and no longer
// expires; its token is used (accepted_at is set).
func AcceptPending(cur *Enrollment, ed Edit) (*Enrollment, error) {
	if err := answerable(cur, ed.Now); err != nil {
		return nil, err
	}
	next := cur.clone()
	next.AutoEnroll = true
	next.AcceptedAt = ed.Now.UTC()
	next.ExpiresAt = time.Time{}
	next.record(ed, AllowedToAllowed, "")
	return next, nil
}

// Decline ends an open invitation as declined.
func Decline(cur *Enrollment, ed Edit) (*Enrollment, error) {
	if err := answerable(cur, ed.Now); err != nil {
		return nil, err
	}
	next := cur.clone()
	next.State = StateDeclined
	next.clearInvitation()
	next.record(ed, AllowedToDeclined, "")
	return next, nil
}

// Expire marks an open invitation past its expiry as expired; false if there is nothing to do.
func Expire(cur *Enrollment, ed Edit) (*Enrollment, bool) {
	if cur == nil || cur.State != StateInvited || cur.Effective(ed.Now) != StateExpired {
		return cur, false
	}
	next := cur.clone()
	next.State = StateExpired
	next.clearInvitation()
	next.record(ed, AllowedToExpired, "")
	return next, true
}

// Register applies a new account to one of its email's open invitations: auto-enroll ones
// become active enrollments (Open edX semantics), the others stay open and carry the user.
func Register(cur *Enrollment, user *User, ed Edit) (*Enrollment, bool) {
	if cur == nil || cur.Effective(ed.Now) != StateInvited || cur.Username == user.Username {
		return cur, false
	}
	next := cur.clone()
	next.Username = user.Username
	if cur.AutoEnroll {
		next.activate()
		next.record(ed, AllowedToEnrolled, "")
	} else {
		next.record(ed, AllowedToAllowed, "")
	}
	return next, true
}

// answerable is the 410 rule (docs/api.md#invitations) for accept and decline.
func answerable(cur *Enrollment, now time.Time) error {
	switch {
	case cur == nil:
		return ErrNotFound
	case cur.State == StateExpired || cur.Effective(now) == StateExpired:
		return ErrInvitationExpired
	case cur.State != StateInvited, !cur.AcceptedAt.IsZero():
		return ErrInvitationInvalid
	}
	return nil
}

func mailIf(owed bool, k MailKind) MailKind {
	if owed {
		return k
	}
	return ""
}

func cloneOrNew(cur *Enrollment, courseID, email string, now time.Time) *Enrollment {
	if cur == nil {
		return newEnrollment(courseID, email, now)
	}
	return cur.clone()
}

func (e *Enrollment) clone() *Enrollment {
	c := *e
	c.InviteMails = append([]time.Time(nil), e.InviteMails...)
	if e.LastChange != nil {
		lc := *e.LastChange
		c.LastChange = &lc
	}
	return &c
}

func (e *Enrollment) activate() {
	e.State = StateActive
	e.AutoEnroll = false
	e.ExpiresAt = time.Time{}
	e.AcceptedAt = time.Time{}
	e.clearInvitation()
}

func (e *Enrollment) invite(ed Edit) {
	e.State = StateInvited
	e.AcceptedAt = time.Time{}
	e.AutoEnroll = ed.AutoEnroll
	e.TokenNonce = NewTokenNonce()
	e.TokenHash = "" // set by the service (sealInvitation), which holds the signing secret
	ttl := time.Duration(DefaultInvitationTTLDays) * 24 * time.Hour
	if ed.Course != nil {
		ttl = ed.Course.InvitationTTL()
	}
	e.ExpiresAt = ed.Now.Add(ttl).UTC()
	e.scheduleReminders(ed.Now, ed.Course)
}

// clearInvitation ends an invitation's life as an answerable token. The token hash stays, so
// that a used, declined, revoked or expired token is answered 410 rather than 404; the nonce
// goes, so the token can no longer be derived for mail.
func (e *Enrollment) clearInvitation() {
	e.TokenNonce = ""
}

// record stamps the change: version, update time, audit fields and any mail owed.
func (e *Enrollment) record(ed Edit, transition string, mail MailKind) {
	e.Version++
	e.UpdatedAt = ed.Now.UTC()
	if e.CreatedAt.IsZero() {
		e.CreatedAt = e.UpdatedAt
	}
	e.LastChange = &Change{By: ed.Actor, At: e.UpdatedAt, Reason: ed.Reason, Transition: transition, Source: ed.Source}
	e.MailSkipped = false
	if mail == MailInvited {
		recent := e.InviteMails[:0:0]
		for _, at := range e.InviteMails {
			if ed.Now.Sub(at) < 24*time.Hour {
				recent = append(recent, at)
			}
		}
		if len(recent) >= MaxInviteMailsPerDay {
			mail, e.MailSkipped = "", true
		} else {
			recent = append(recent, e.UpdatedAt)
			e.LastSentAt = e.UpdatedAt
			e.SendCount++
		}
		e.InviteMails = recent
	}
	if mail != "" {
		e.MailKind = mail
		e.MailSeq++
		e.MailOwedAt = e.UpdatedAt
	}
}
