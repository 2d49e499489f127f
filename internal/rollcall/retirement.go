package rollcall

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"
)

// Retirement: the enrollment-owning steps of Open edX's account retirement pipeline
// (docs/api.md#retirement). A learner (or staff for them) asks to be forgotten; the account is
// frozen at once (it can no longer be enrolled or invited); after a cool-off the retirement
// driver walks the request through its states, unenrolls the learner and finally retires the
// account: every item that names the person is rewritten under a salted pseudonym, so that
// the old username and email find nothing. Each step can be repeated safely.

// RetirementState is a step of the retirement pipeline, in Open edX's names.
type RetirementState string

// The states, in the order a retirement moves through them; ERRORED and ABORTED are dead ends
// reachable from any state that is not one.
const (
	RetirementPending             RetirementState = "PENDING"
	RetirementRetiringEnrollments RetirementState = "RETIRING_ENROLLMENTS"
	RetirementEnrollmentsComplete RetirementState = "ENROLLMENTS_COMPLETE"
	RetirementRetiringLMS         RetirementState = "RETIRING_LMS"
	RetirementLMSComplete         RetirementState = "LMS_COMPLETE"
	RetirementErrored             RetirementState = "ERRORED"
	RetirementAborted             RetirementState = "ABORTED"
	RetirementComplete            RetirementState = "COMPLETE"
)

// retirementOrder is Open edX's state_execution_order.
var retirementOrder = []RetirementState{RetirementPending, RetirementRetiringEnrollments,
	RetirementEnrollmentsComplete, RetirementRetiringLMS, RetirementLMSComplete,
	RetirementErrored, RetirementAborted, RetirementComplete}

// Order is the state's place in the pipeline (-1 for no state).
func (s RetirementState) Order() int { return slices.Index(retirementOrder, s) }

// DeadEnd reports whether nothing follows the state.
func (s RetirementState) DeadEnd() bool {
	return s == RetirementErrored || s == RetirementAborted || s == RetirementComplete
}

// Person is who an item names: a username (empty for an invitee without an account) and an email.
type Person struct {
	Username string
	Email    string
}

// Retirement is one account's retirement request and where it is.
type Retirement struct {
	ID int64 // RetirementID of the original username
	// OriginalUsername and OriginalEmail are kept until the account is retired, then dropped
	// (the item keeps only the pseudonyms; the id is a keyed hash of the username).
	OriginalUsername string
	OriginalEmail    string
	RetiredUsername  string
	RetiredEmail     string
	State            RetirementState
	LastState        RetirementState
	Responses        string // the driver's notes, appended per state change
	Retired          bool   // the account's items have been rewritten (the retire step ran)
	Created          time.Time
	Modified         time.Time
	Version          int64
}

// CurrentPerson is the person as items name them now: the pseudonyms once retired.
func (r *Retirement) CurrentPerson() Person {
	if r.Retired {
		return Person{Username: r.RetiredUsername, Email: r.RetiredEmail}
	}
	return Person{Username: r.OriginalUsername, Email: r.OriginalEmail}
}

// RetirementStore is the port the retirement keeps its requests through and rewrites the
// person's items with (internal/dynamo implements it, without any Scan).
type RetirementStore interface {
	// CreateRetirement stores r (new: a *ConflictError if the account has one already) and
	// marks the user's items as retiring, in one transaction.
	CreateRetirement(ctx context.Context, r *Retirement) error
	GetRetirement(ctx context.Context, id int64) (*Retirement, error) // ErrNotFound
	// RetirementsInState lists the requests in state created before the given time.
	RetirementsInState(ctx context.Context, state RetirementState, createdBefore time.Time) ([]*Retirement, error)
	// SaveRetirement writes r if the stored version is still prev (ErrVersionChange if not).
	SaveRetirement(ctx context.Context, r *Retirement, prev int64) error
	// CancelRetirement deletes the request (if it still has version prev) and lifts the
	// retiring mark from the user's items, in one transaction.
	CancelRetirement(ctx context.Context, r *Retirement, prev int64) error
}

// RetirementParticipant is any store that holds personal data of its own (job results, for
// one) and joins the retire step: RetirePerson rewrites every item that names from so that it
// names to instead, finds them without a Scan, and may be called again after a partial run
// (a repeat finds nothing left to do). The enrollment store itself is the first participant.
type RetirementParticipant interface {
	RetirePerson(ctx context.Context, from, to Person) (RetireCounts, error)
}

// RetireCounts is what a participant's RetirePerson rewrote (for the log and the cost note).
type RetireCounts struct {
	Enrollments       int
	InvitationsClosed int
	MailDropped       int
	AuditEntries      int
	MailMarkers       int
	Other             int
	JobChunks         int // job result chunks rewritten
}

// Add sums counts.
func (c RetireCounts) Add(o RetireCounts) RetireCounts {
	return RetireCounts{c.Enrollments + o.Enrollments, c.InvitationsClosed + o.InvitationsClosed,
		c.MailDropped + o.MailDropped, c.AuditEntries + o.AuditEntries, c.MailMarkers + o.MailMarkers, c.Other + o.Other,
		c.JobChunks + o.JobChunks}
}

// Retirements are the retirement use cases.
type Retirements struct {
	Svc   *Service
	Store RetirementStore
	// Salt keys the pseudonyms and retirement ids (a stable secret: the same username always
	// retires to the same name, as Open edX's salted hashes).
	Salt []byte
	// Participants rewrite the person's items in the retire step, in order; the enrollment
	// store comes first.
	Participants []RetirementParticipant
}

// RetiredUsernamePrefix and RetiredEmailDomain shape the pseudonyms, as Open edX's defaults.
const (
	RetiredUsernamePrefix = "retired__user_"
	RetiredEmailDomain    = "retired.invalid"
)

func (r *Retirements) mac(kind, value string) []byte {
	m := hmac.New(sha256.New, r.Salt)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// RetiredUsername is the salted pseudonym of a username.
func (r *Retirements) RetiredUsername(username string) string {
	return RetiredUsernamePrefix + hex.EncodeToString(r.mac("username", NormalizeUsername(username))[:20])
}

// RetiredEmail is the salted pseudonym of an account's email (from its username, as Open edX).
func (r *Retirements) RetiredEmail(username string) string {
	return r.RetiredUsername(username) + "@" + RetiredEmailDomain
}

// RetirementID is the id of a username's retirement request: 52 bits of a keyed hash, so a
// JSON number, and the store key needs neither the username nor a second lookup item.
func (r *Retirements) RetirementID(username string) int64 {
	b := r.mac("retirement-id", NormalizeUsername(username))
	return int64(binary.BigEndian.Uint64(b[:8]) >> 12)
}

// IsRetirementService reports whether actor may drive retirements: staff, or a token with
// the retirement_service claim.
func IsRetirementService(a Actor) bool { return a.Staff || a.RetirementService }

func requireRetirementService(a Actor) error {
	if !IsRetirementService(a) {
		return ErrForbidden
	}
	return nil
}

func (r *Retirements) now() time.Time { return r.Svc.now() }

// byUsername reads the request of username (ErrNotFound if none).
func (r *Retirements) byUsername(ctx context.Context, username string) (*Retirement, error) {
	if !ValidUsername(username) {
		return nil, ErrNotFound
	}
	ret, err := r.Store.GetRetirement(ctx, r.RetirementID(username))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get retirement", err)
	}
	return ret, nil
}

// DeactivateLogout is POST deactivate_logout: the user asks for retirement (staff may name
// another user). The request starts PENDING and the account can no longer be enrolled. A
// repeat is a no-op.
func (r *Retirements) DeactivateLogout(ctx context.Context, actor Actor, username string) error {
	if username == "" {
		username = actor.Username
	}
	if NormalizeUsername(username) != NormalizeUsername(actor.Username) && !actor.Staff {
		return ErrForbidden
	}
	if !ValidUsername(username) {
		return FieldError("username", "Enter a valid username.")
	}
	u, err := r.Svc.Store.GetUser(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("get user", err)
	}
	if u.Retiring {
		return nil // already asked
	}
	now := r.now()
	ret := &Retirement{ID: r.RetirementID(u.Username), OriginalUsername: u.Username, OriginalEmail: u.Email,
		RetiredUsername: r.RetiredUsername(u.Username), RetiredEmail: r.RetiredEmail(u.Username),
		State: RetirementPending, LastState: RetirementPending, Created: now, Modified: now, Version: 1}
	err = r.Store.CreateRetirement(ctx, ret)
	var ce *ConflictError
	if errors.As(err, &ce) {
		return nil // a concurrent twin made it
	}
	if err != nil {
		return unavailable("create retirement", err)
	}
	return nil
}

// RetirementQueue lists the requests in any of states created at least coolOffDays ago.
func (r *Retirements) RetirementQueue(ctx context.Context, actor Actor, coolOffDays int, states []string) ([]*Retirement, error) {
	if err := requireRetirementService(actor); err != nil {
		return nil, err
	}
	if coolOffDays < 0 {
		return nil, FieldError("cool_off_days", "Ensure this value is greater than or equal to 0.")
	}
	if len(states) == 0 {
		return nil, FieldError("states", "This field is required.")
	}
	var want []RetirementState
	for _, s := range states {
		st := RetirementState(s)
		if st.Order() < 0 {
			return nil, FieldError("states", "Unknown state: "+s)
		}
		if !slices.Contains(want, st) {
			want = append(want, st)
		}
	}
	before := r.now().Add(-time.Duration(coolOffDays) * 24 * time.Hour)
	var out []*Retirement
	for _, st := range want {
		rs, err := r.Store.RetirementsInState(ctx, st, before)
		if err != nil {
			return nil, unavailable("retirement queue", err)
		}
		out = append(out, rs...)
	}
	slices.SortFunc(out, func(a, b *Retirement) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RetirementStatus is GET {username}/retirement_status: the request of that (original) username.
func (r *Retirements) RetirementStatus(ctx context.Context, actor Actor, username string) (*Retirement, error) {
	if err := requireRetirementService(actor); err != nil {
		return nil, err
	}
	ret, err := r.byUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	if ret.Retired {
		ret.OriginalUsername = username // the caller named it; the item no longer holds it
	}
	return ret, nil
}

// UpdateRetirementStatus moves a request to newState. Moving backwards, or out of a dead end,
// is a 400; asking for the current state again is a no-op (a retried driver call).
func (r *Retirements) UpdateRetirementStatus(ctx context.Context, actor Actor, username, newState, response string) error {
	if err := requireRetirementService(actor); err != nil {
		return err
	}
	v := &ValidationError{}
	if username == "" {
		v.Add("username", "This field is required.")
	}
	st := RetirementState(newState)
	if newState == "" {
		v.Add("new_state", "This field is required.")
	} else if st.Order() < 0 {
		v.Add("new_state", "Unknown state: "+newState)
	}
	if err := v.OrNil(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		ret, err := r.byUsername(ctx, username)
		if err != nil {
			return err
		}
		if ret.State == st {
			return nil
		}
		if ret.State.DeadEnd() {
			return NonFieldError("Unable to move a retirement out of the dead-end state " + string(ret.State) + ".")
		}
		if st.Order() < ret.State.Order() {
			return NonFieldError("Unable to move a retirement from " + string(ret.State) + " to " + newState + ".")
		}
		prev := ret.Version
		ret.LastState, ret.State = ret.State, st
		if response != "" {
			if ret.Responses != "" {
				ret.Responses += "\n"
			}
			ret.Responses += response
			if len(ret.Responses) > 100_000 {
				ret.Responses = ret.Responses[len(ret.Responses)-100_000:]
			}
		}
		ret.Modified = r.now()
		ret.Version++
		err = r.Store.SaveRetirement(ctx, ret, prev)
		if errors.Is(err, ErrVersionChange) && attempt < 3 {
			continue
		}
		if err != nil {
			return unavailable("save retirement", err)
		}
		return nil
	}
}

// CancelRetirement removes a PENDING request (staff): the account is usable again.
func (r *Retirements) CancelRetirement(ctx context.Context, actor Actor, id int64) error {
	if err := actor.RequireStaff(); err != nil {
		return err
	}
	ret, err := r.Store.GetRetirement(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("get retirement", err)
	}
	if ret.State != RetirementPending {
		return NonFieldError("Retirement requests can only be cancelled for users in the PENDING state. Current request state for '" +
			ret.OriginalUsername + "': " + string(ret.State))
	}
	if err := r.Store.CancelRetirement(ctx, ret, ret.Version); err != nil {
		if errors.Is(err, ErrVersionChange) {
			return NonFieldError("The retirement request changed; try again.")
		}
		return unavailable("cancel retirement", err)
	}
	return nil
}

// Unenroll is POST /api/enrollment/v1/unenroll/: every active enrollment of the retiring user
// ends (without mail). It returns the courses it unenrolled; a repeat returns none.
func (r *Retirements) Unenroll(ctx context.Context, actor Actor, username string) ([]string, error) {
	if err := requireRetirementService(actor); err != nil {
		return nil, err
	}
	if username == "" {
		return nil, FieldError("username", "This field is required.")
	}
	ret, err := r.byUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	if ret.Retired {
		return nil, nil // its enrollments were rewritten, all ended
	}
	es, err := r.Svc.Store.PersonEnrollments(ctx, ret.OriginalEmail)
	if err != nil {
		return nil, unavailable("list enrollments", err)
	}
	var out []string
	for _, e := range es {
		if e.State != StateActive {
			continue
		}
		next, err := r.Svc.saveWithRetry(ctx, e.ID, func(cur *Enrollment) (*Enrollment, error) {
			if cur == nil || cur.State != StateActive {
				return cur, nil
			}
			next, _ := Unenroll(cur, Edit{Actor: actor.Username, Reason: "account retirement", Source: SourceRetirement, Now: r.now()})
			return next, nil
		})
		if err != nil {
			return nil, err
		}
		if next != nil && next.State == StateUnenrolled {
			out = append(out, e.CourseID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// SourceRetirement is the change source of what the retirement does.
const SourceRetirement = "retirement"

// Retire is POST /api/user/v1/accounts/retire/: every item that names the person is rewritten
// under the pseudonyms (open invitations closed, owed mail dropped), then the request forgets
// the original username and email. Safe to repeat, also after a partial run.
func (r *Retirements) Retire(ctx context.Context, actor Actor, username string) error {
	if err := requireRetirementService(actor); err != nil {
		return err
	}
	if username == "" {
		return FieldError("username", "This field is required.")
	}
	ret, err := r.byUsername(ctx, username)
	if err != nil {
		return err
	}
	from := Person{Username: ret.OriginalUsername, Email: ret.OriginalEmail}
	if ret.Retired {
		// A repeat: the originals are gone from the request, but the caller named the
		// username; the email's items were all moved before Retired was set.
		from = Person{Username: username}
	}
	to := Person{Username: ret.RetiredUsername, Email: ret.RetiredEmail}
	var total RetireCounts
	for _, p := range r.Participants {
		c, err := p.RetirePerson(ctx, from, to)
		if err != nil {
			return unavailable("retire", err)
		}
		total = total.Add(c)
	}
	if !ret.Retired {
		prev := ret.Version
		ret.Retired = true
		ret.OriginalUsername, ret.OriginalEmail = "", ""
		ret.Modified = r.now()
		ret.Version++
		if err := r.Store.SaveRetirement(ctx, ret, prev); err != nil && !errors.Is(err, ErrVersionChange) {
			return unavailable("save retirement", err)
		}
	}
	r.Svc.log().InfoContext(ctx, "retirement: account retired", "retirement_id", ret.ID,
		"enrollments", total.Enrollments, "invitations_closed", total.InvitationsClosed, "mail_dropped", total.MailDropped,
		"audit_entries", total.AuditEntries, "mail_markers", total.MailMarkers, "other", total.Other,
		"job_chunks", total.JobChunks)
	return nil
}

// RetireEnrollment is what becomes of one enrollment of a retired person: the same course and
// history under the pseudonyms (a new id, as ids derive from the email), an open invitation
// closed (unenrolled, its token unusable), owed mail dropped. The change is recorded, so the
// audit trail shows the retirement.
func RetireEnrollment(e *Enrollment, to Person, now time.Time) (next *Enrollment, closed, dropped bool) {
	n := e.clone()
	n.ID = EnrollmentID(e.CourseID, to.Email)
	n.Email = NormalizeEmail(to.Email)
	if n.Username != "" {
		n.Username = to.Username
	}
	if n.State == StateInvited {
		n.State = StateUnenrolled
		n.ExpiresAt = time.Time{}
		closed = true
	}
	n.clearInvitation()
	if !n.MailOwedAt.IsZero() {
		dropped = true
	}
	n.MailOwedAt = time.Time{}
	// The moved item is a new item in the stream: with a mail_seq it would look like mail owed.
	n.MailSeq, n.MailKind = 0, ""
	n.InviteMails = nil
	n.Version++
	n.UpdatedAt = now.UTC()
	n.LastChange = &Change{By: SourceRetirement, At: now.UTC(), Transition: "retired", Source: SourceRetirement}
	return n, closed, dropped
}

// RetireAuditEntry rewrites an audit entry of a retired person.
func RetireAuditEntry(a *AuditEntry, from, to Person) *AuditEntry {
	n := *a
	n.EnrollmentID = EnrollmentID(a.CourseID, to.Email)
	n.Email = NormalizeEmail(to.Email)
	if from.Username != "" && NormalizeUsername(a.By) == NormalizeUsername(from.Username) {
		n.By = to.Username
	}
	if from.Email != "" && strings.EqualFold(a.By, from.Email) {
		n.By = to.Username
	}
	return &n
}
