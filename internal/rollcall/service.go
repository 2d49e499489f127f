package rollcall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Store is the persistence port of the domain. internal/dynamo implements it on DynamoDB.
// Reads of enrollments are strongly consistent; "missing" is not an error for batch reads.
type Store interface {
	ListingStore    // listing.go
	InvitationStore // invitations.go

	GetCourse(ctx context.Context, id string) (*Course, error) // ErrNotFound
	GetCourses(ctx context.Context, ids []string) (map[string]*Course, error)
	PutCourse(ctx context.Context, c *Course) (created bool, err error)

	// CreateUser stores a user, unique by username and by email (one transaction);
	// *ConflictError when either is taken.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, username string) (*User, error) // ErrNotFound
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// RegistrationMark is an opaque value that changes whenever a user is created: equal marks
	// read at two times mean no user was created in between.
	RegistrationMark(ctx context.Context) (string, error)
	// ResolveIdentifiers finds the users behind bulk identifiers in batched reads: an identifier
	// with '@' is looked up as an email, any other as a username. The map is keyed by identifier.
	ResolveIdentifiers(ctx context.Context, identifiers []string) (map[string]*User, error)

	GetEnrollment(ctx context.Context, id string) (*Enrollment, error) // ErrNotFound
	GetEnrollments(ctx context.Context, ids []string) (map[string]*Enrollment, error)
	// PersonEnrollments lists every enrollment and invitation of one email.
	PersonEnrollments(ctx context.Context, email string) ([]*Enrollment, error)

	// LockCourses takes the bulk-write lease of each course (in sorted order, waiting while
	// another holder has it, up to wait) and returns the function that releases them.
	// A course that stays busy gives ErrCourseBusy. A lease lapses after ttl, or soon after
	// ctx's deadline (when Lambda stops the holder) if that comes first.
	LockCourses(ctx context.Context, courses []string, owner string, ttl, wait time.Duration) (unlock func(context.Context), err error)
	// PutEnrollments writes whole items in batches. Only a holder of the courses' leases may
	// call it. It returns the ids whose write failed after retries.
	PutEnrollments(ctx context.Context, es []*Enrollment) (failed map[string]error, err error)
	// SaveEnrollment writes one enrollment if its course is not leased and the stored version
	// is still prevVersion (0 = must not exist): ErrCourseBusy or ErrVersionChange otherwise.
	SaveEnrollment(ctx context.Context, e *Enrollment, prevVersion int64) error
	// CommitEnrollments writes es atomically if no lease holds any of courses and every
	// enrollment in read (id -> version read, 0 = absent) still has that version; es must be
	// among them. A *CourseBusyError or ErrVersionChange otherwise. It takes at least
	// SmallRequestItems courses and enrollments together.
	CommitEnrollments(ctx context.Context, courses []string, read map[string]int64, es []*Enrollment) error
	// AwaitCourse waits until no bulk lease holds the course, or gives ErrCourseBusy at deadline.
	AwaitCourse(ctx context.Context, courseID string, deadline time.Time) error
	// ReserveInvites counts n more new invitations by username on day (UTC, YYYY-MM-DD) if
	// that keeps the day's count at most limit (one conditional write); ErrInviteQuota if not.
	ReserveInvites(ctx context.Context, username, day string, n, limit int) error
}

// ErrInviteQuota means a course admin's daily invitation quota would be exceeded.
var ErrInviteQuota = errors.New("daily invitation quota exceeded")

// DefaultAdminDailyInvites is how many new addresses a course admin who is not staff may
// invite a day unless configured (ADMIN_DAILY_INVITES).
const DefaultAdminDailyInvites = 1000

// SmallRequestItems bounds the bulk requests that commit in one CommitEnrollments (see
// fitsOneCommit): enrollments read plus courses. A commit costs about twice a batched write
// per item, and for every item it only checks, so the bound keeps that premium small; a
// larger request writes in batches under leases.
const SmallRequestItems = 25

// ErrCourseBusy means another bulk enrollment holds the course.
var ErrCourseBusy = errors.New("course is busy with another bulk enrollment")

// CourseBusyError is ErrCourseBusy naming the course, so that a writer can wait for it.
type CourseBusyError struct{ CourseID string }

func (e *CourseBusyError) Error() string {
	return "course " + e.CourseID + " is busy with another bulk enrollment"
}

func (e *CourseBusyError) Is(target error) bool { return target == ErrCourseBusy }

// Service applies the domain's rules through a Store.
type Service struct {
	Store Store
	Now   func() time.Time
	// Keys sign list cursors and derive invitation tokens (see KeyRing).
	Keys KeyRing
	// LeaseTTL bounds how long a crashed bulk request can hold a course; LeaseWait is how long
	// a writer waits for a busy course before answering 503.
	LeaseTTL  time.Duration
	LeaseWait time.Duration
	// Metrics receives counts of what was done (nil: none are kept).
	Metrics Metrics
	// DeadlineMargin is kept free before the invocation's deadline (default 3 s): no wait for
	// a course runs into it.
	DeadlineMargin time.Duration
	// CommitLimit bounds the bulk requests that commit optimistically in one transaction
	// (enrollments read plus courses, see fitsOneCommit); larger ones write in batches under
	// their courses' leases. 0, or anything above SmallRequestItems (what the store promises
	// a commit takes), means SmallRequestItems; 1 sends every bulk write through the leases.
	CommitLimit int
	Log         *slog.Logger
	// IDs turns store ids into the public ids the API shows, and back (see IDCodec). Its key
	// never rotates (ids would change); nil means a codec keyed with the current signing key.
	IDs *IDCodec
	// AdminDailyInvites caps the new addresses a course admin who is not staff may invite a
	// day; 0 means DefaultAdminDailyInvites.
	AdminDailyInvites int
}

// reserveInvites takes n more of actor's daily invitation quota (staff have none): a
// *QuotaError, before any enrollment is written, when it would be exceeded.
func (s *Service) reserveInvites(ctx context.Context, actor Actor, n int) error {
	if actor.Staff || n <= 0 {
		return nil
	}
	limit := s.AdminDailyInvites
	if limit <= 0 {
		limit = DefaultAdminDailyInvites
	}
	now := s.now()
	err := s.Store.ReserveInvites(ctx, NormalizeUsername(actor.Username), now.Format("2006-01-02"), n, limit)
	if errors.Is(err, ErrInviteQuota) {
		midnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
		return &QuotaError{Detail: fmt.Sprintf("Request was throttled. A course admin may invite at most %d new addresses a day; expected available in %d seconds.",
			limit, int(midnight.Sub(now).Seconds())+1), RetryAfter: midnight.Sub(now)}
	}
	if err != nil {
		return unavailable("reserve invitations", err)
	}
	return nil
}

// newInvites counts the writes that invite an address anew (not a re-issue of an open one).
func newInvites(es []*Enrollment) int {
	n := 0
	for _, e := range es {
		if e.State == StateInvited && e.LastChange != nil && e.LastChange.Transition == UnenrolledToAllowed {
			n++
		}
	}
	return n
}

// logSkippedMail logs the invitation mails the per-address daily cap skipped.
func (s *Service) logSkippedMail(ctx context.Context, es []*Enrollment) {
	for _, e := range es {
		if e.MailSkipped {
			s.log().WarnContext(ctx, "invitation mail skipped: daily cap for this address and course reached",
				"enrollment_id", e.ID, "course_id", e.CourseID, "cap", MaxInviteMailsPerDay)
		}
	}
}

func (s *Service) idCodec() *IDCodec {
	if s.IDs == nil {
		return NewIDCodec(s.Keys.Current.Secret)
	}
	return s.IDs
}

// PublicID is the id the API shows for an enrollment.
func (s *Service) PublicID(e *Enrollment) string { return s.idCodec().Public(e.ID) }

// storeID is the store id behind a public id; ErrNotFound for anything else.
func (s *Service) storeID(publicID string) (string, error) {
	id, ok := s.idCodec().Store(publicID)
	if !ok {
		return "", ErrNotFound
	}
	return id, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Clock is the service's current time (injected in tests).
func (s *Service) Clock() time.Time { return s.now() }

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Service) leaseTTL() time.Duration {
	if s.LeaseTTL > 0 {
		return s.LeaseTTL
	}
	return 60 * time.Second
}

// leaseMargin is how long a lease outlives its holder's deadline (the store's rule).
const leaseMargin = 2 * time.Second

// LeaseUntil is the latest time a course lease taken now by a request with ctx can last:
// LeaseTTL, or its deadline (plus a margin for writes in flight) if that comes first. An
// Idempotency-Key reservation outlives it, so a key is free again only once the leases of
// its crashed attempt have lapsed.
func (s *Service) LeaseUntil(ctx context.Context, now time.Time) time.Time {
	until := now.Add(s.leaseTTL())
	if d, ok := ctx.Deadline(); ok && d.Add(leaseMargin).Before(until) {
		until = d.Add(leaseMargin)
	}
	return until
}

// leaseWait is how long a writer may still wait for a busy course: LeaseWait (default 25 s,
// under API Gateway's 30 s), but never past the invocation's deadline less DeadlineMargin, so
// that a request that gives up still has time to write what it did and answer 503 with its
// body, instead of Lambda stopping it and the client getting API Gateway's bare timeout.
func (s *Service) leaseWait(ctx context.Context) time.Duration {
	wait := s.LeaseWait
	if wait <= 0 {
		wait = 25 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		margin := s.DeadlineMargin
		if margin <= 0 {
			margin = 3 * time.Second
		}
		if left := time.Until(dl) - margin; left < wait {
			wait = max(left, 0)
		}
	}
	return wait
}

// unavailable wraps a store failure as the 503 the client sees.
func unavailable(op string, err error) error {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	if errors.Is(err, ErrCourseBusy) {
		return &UnavailableError{Detail: "The course is busy with another bulk enrollment; retry shortly.", Err: err}
	}
	return &UnavailableError{Detail: "The enrollment store is unavailable; retry shortly.", Err: fmt.Errorf("%s: %w", op, err)}
}

// ---------------------------------------------------------------------------------------------
// Bulk enroll

// bulkEnroll runs a bulk enroll or unenroll (docs/api.md#bulk-enroll).
func (s *Service) bulkEnroll(ctx context.Context, actor Actor, f Fields) (*BulkResponse, error) {
	// Permission comes first, as Open edX's IsStaff does: a caller who may not bulk enroll
	// learns nothing about the body. Course admins may, for their own courses.
	var courses map[string]*Course
	if !actor.Staff {
		ids, ok := ParseBulkCourses(f)
		if !ok {
			return nil, ErrForbidden
		}
		cs, err := s.Store.GetCourses(ctx, ids)
		if err != nil {
			return nil, unavailable("bulk enroll: read courses", err)
		}
		for _, id := range ids {
			if c := cs[id]; c == nil || !c.IsAdmin(actor.Username) {
				return nil, ErrForbidden
			}
		}
		courses = cs
	}
	req, err := ParseBulkRequest(f)
	if err != nil {
		return nil, err
	}
	if req.Pairs() > MaxBulkPairs {
		return nil, &TooLargeError{Detail: fmt.Sprintf("A request may carry at most %d identifier x course pairs; this one has %d.", MaxBulkPairs, req.Pairs())}
	}
	if courses == nil {
		if courses, err = s.Store.GetCourses(ctx, req.Courses); err != nil {
			return nil, unavailable("bulk enroll: read courses", err)
		}
	}
	for _, id := range req.Courses {
		if courses[id] == nil {
			return nil, ErrNotFound
		}
	}
	for i, id := range req.Courses {
		if c := req.CohortFor(i); c != "" && !courses[id].HasCohort(c) {
			return nil, NonFieldError(fmt.Sprintf("cohort %s not found in course %s.", c, id))
		}
	}

	// Read before anything is resolved: a user created after this mark may have missed the
	// invitations this request writes (see registerLateSignups).
	regMark, err := s.Store.RegistrationMark(ctx)
	if err != nil {
		return nil, unavailable("bulk enroll: read registration mark", err)
	}

	// A small request commits optimistically in one transaction: no lease to take, so small
	// requests on a course do not queue behind one another (only real conflicts retry).
	if s.fitsOneCommit(req) {
		users, err := s.Store.ResolveIdentifiers(ctx, Resolvable(req.Identifiers))
		if err != nil {
			return nil, unavailable("bulk enroll: resolve identifiers", err)
		}
		return s.bulkCommit(ctx, req, courses, users, actor, regMark)
	}

	// A larger request writes in batches under its courses' leases. Two orders, the same
	// guarantee: every write is decided on states read under the courses' leases. When a small sample says the request changes something (new learners,
	// the common case), lock first and read every before-state once. Otherwise read without
	// a lease, so that a repeat ends with no write at all, and lock and re-read only if
	// something changes after all. The sample only picks the order.
	// Each attempt owns its leases alone: two requests never share one, whatever their
	// Idempotency-Key (twins are kept apart by the key's reservation; see httpapi).
	owner := fmt.Sprintf("bulk-%d-%d", s.now().UnixNano(), rand.Int64())
	var (
		locked []string
		unlock = func(context.Context) {}
	)
	// Identifiers resolve outside the lease (a registration after regMark is caught after
	// the write), at the same time as the sample is read.
	users, changes, err := s.resolveAndSample(ctx, req, courses, actor)
	if err != nil {
		return nil, err
	}
	if changes {
		locked = dedupe(req.Courses) // LockCourses takes them in sorted order
		if unlock, err = s.Store.LockCourses(ctx, locked, owner, s.leaseTTL(), s.leaseWait(ctx)); err != nil {
			return nil, unavailable("bulk enroll: lock courses", err)
		}
	}
	plan := newBulkPlan(req, courses, users, actor, s.now())
	before, err := s.Store.GetEnrollments(ctx, plan.ids(req.Courses))
	if err != nil {
		unlock(context.WithoutCancel(ctx))
		return nil, unavailable("bulk enroll: read enrollments", err)
	}
	plan.run(before)
	if len(plan.changed) == 0 {
		unlock(context.WithoutCancel(ctx))
		return plan.response(), nil
	}

	var (
		writes []*Enrollment
		failed map[string]error
	)
	if locked != nil {
		writes, failed, err = s.writePlan(ctx, plan)
	} else {
		// Something changes after all: take the leases of the courses that change, re-read
		// their states under the lease (another writer may have run since), decide again.
		locked = plan.changedCourses()
		if unlock, err = s.Store.LockCourses(ctx, locked, owner, s.leaseTTL(), s.leaseWait(ctx)); err != nil {
			return nil, unavailable("bulk enroll: lock courses", err)
		}
		writes, failed, err = s.writeUnderLease(ctx, req, courses, users, actor, locked, before, &plan)
	}
	unlock(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	for id, ferr := range failed {
		s.log().ErrorContext(ctx, "bulk enroll: enrollment write failed", "enrollment_id", id, "error", ferr)
	}
	plan.markFailed(failed)

	// An invitee may have registered while we worked: registration flips the open
	// invitations it can see, and we flip the ones it could not (write, then check). This
	// needs no lease: the read comes after our write, and each flip is a lease-checked,
	// version-checked write of its own.
	if err := s.registerLateSignups(ctx, regMark, writes, failed); err != nil {
		return nil, unavailable("bulk enroll: check new accounts", err)
	}
	return plan.response(), nil
}

// fitsOneCommit says whether a request is small: every enrollment it may touch, and a lease
// check per course, are at most the commit limit (SmallRequestItems unless CommitLimit lowers it).
func (s *Service) fitsOneCommit(req *BulkRequest) bool {
	limit := SmallRequestItems
	if s.CommitLimit > 0 && s.CommitLimit < limit {
		limit = s.CommitLimit
	}
	people, courses := len(distinct(req.Identifiers)), len(dedupe(req.Courses))
	return people*courses+courses <= limit
}

// bulkCommit runs a small bulk request optimistically: read every before-state, decide, and
// commit the changes in one transaction on condition that nothing read has changed and no
// lease holds the courses. A conflict means another writer got there first: read again and
// decide again (its result is then this request's before-state, as in a serial order). A
// course leased by a large request is waited for.
func (s *Service) bulkCommit(ctx context.Context, req *BulkRequest, courses map[string]*Course, users map[string]*User,
	actor Actor, regMark string) (*BulkResponse, error) {
	ids := newBulkPlan(req, courses, users, actor, s.now()).ids(req.Courses)
	courseIDs := dedupe(req.Courses)
	deadline := time.Now().Add(s.leaseWait(ctx))
	pause := 10 * time.Millisecond
	reserved := 0 // of the actor's daily invitation quota, over the retries
	for {
		before, err := s.Store.GetEnrollments(ctx, ids)
		if err != nil {
			return nil, unavailable("bulk enroll: read enrollments", err)
		}
		plan := newBulkPlan(req, courses, users, actor, s.now())
		plan.run(before)
		if len(plan.changed) == 0 {
			return plan.response(), nil
		}
		read := make(map[string]int64, len(ids))
		for _, id := range ids {
			read[id] = 0
			if e := before[id]; e != nil {
				read[id] = e.Version
			}
		}
		writes := plan.writes()
		for _, e := range writes {
			s.sealInvitation(e)
		}
		if n := newInvites(writes); n > reserved {
			if err := s.reserveInvites(ctx, actor, n-reserved); err != nil {
				return nil, err
			}
			reserved = n
		}
		err = s.Store.CommitEnrollments(ctx, courseIDs, read, writes)
		if err == nil {
			s.logSkippedMail(ctx, writes)
			if err := s.registerLateSignups(ctx, regMark, writes, nil); err != nil {
				return nil, unavailable("bulk enroll: check new accounts", err)
			}
			return plan.response(), nil
		}
		if err := s.awaitRetry(ctx, err, deadline, &pause); err != nil {
			return nil, unavailable("bulk enroll: commit enrollments", err)
		}
	}
}

// awaitRetry is what an optimistic writer does when its write was refused: wait for the
// course that a large bulk request holds, or pause (jittered, doubling) after a version
// conflict. A nil error means try again; any other refusal, or a wait past the deadline,
// ends the attempt with the error to report.
func (s *Service) awaitRetry(ctx context.Context, err error, deadline time.Time, pause *time.Duration) error {
	var busy *CourseBusyError
	switch {
	case errors.As(err, &busy):
		return s.Store.AwaitCourse(ctx, busy.CourseID, deadline)
	case errors.Is(err, ErrVersionChange), errors.Is(err, ErrCourseBusy):
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*pause + time.Duration(rand.Int64N(int64(*pause)))):
		}
		*pause = min(*pause*2, 200*time.Millisecond)
		return nil
	default:
		return err
	}
}

// sampleSize is how many email identifiers resolveAndSample samples (in every course).
const sampleSize = 20

// resolveAndSample resolves the identifiers and, at the same time, reads the before-states
// of the first few email identifiers (whose enrollment ids need no lookup) to say whether
// the request would change any of them. The sample is read without a lease and decides
// nothing: BulkEnroll uses it only to choose whether to lock before reading.
func (s *Service) resolveAndSample(ctx context.Context, req *BulkRequest, courses map[string]*Course, actor Actor) (map[string]*User, bool, error) {
	var (
		users   map[string]*User
		userErr error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		users, userErr = s.Store.ResolveIdentifiers(ctx, Resolvable(req.Identifiers))
	}()
	var sample []string
	for _, ident := range req.Identifiers {
		if ValidEmail(ident) {
			sample = append(sample, ident)
			if len(sample) == sampleSize {
				break
			}
		}
	}
	changes := false
	var sampleErr error
	if len(sample) > 0 {
		sub := *req
		sub.Identifiers = sample
		p := newBulkPlan(&sub, courses, nil, actor, s.now())
		var before map[string]*Enrollment
		if before, sampleErr = s.Store.GetEnrollments(ctx, p.ids(req.Courses)); sampleErr == nil {
			p.run(before)
			changes = len(p.changed) > 0
		}
	}
	wg.Wait()
	if userErr != nil {
		return nil, false, unavailable("bulk enroll: resolve identifiers", userErr)
	}
	if sampleErr != nil {
		return nil, false, unavailable("bulk enroll: read enrollments", sampleErr)
	}
	return users, changes, nil
}

// writeUnderLease re-reads the before-states of the locked courses (another writer may have
// run since the optimistic read), decides again and writes the changes. The caller holds the
// courses' leases; in this order the critical section is two store round trips.
func (s *Service) writeUnderLease(ctx context.Context, req *BulkRequest, courses map[string]*Course, users map[string]*User,
	actor Actor, locked []string, before map[string]*Enrollment, plan **bulkPlan) ([]*Enrollment, map[string]error, error) {
	ids := (*plan).ids(locked)
	fresh, err := s.Store.GetEnrollments(ctx, ids)
	if err != nil {
		return nil, nil, unavailable("bulk enroll: re-read enrollments", err)
	}
	for _, id := range ids {
		if e := fresh[id]; e != nil {
			before[id] = e
		} else {
			delete(before, id)
		}
	}
	p := newBulkPlan(req, courses, users, actor, s.now())
	p.lockedOnly = toSet(locked)
	p.run(before)
	*plan = p
	return s.writePlan(ctx, p)
}

// writePlan writes a plan's changes; the caller holds the leases of their courses.
func (s *Service) writePlan(ctx context.Context, p *bulkPlan) ([]*Enrollment, map[string]error, error) {
	writes := p.writes()
	for _, e := range writes {
		s.sealInvitation(e)
	}
	if err := s.reserveInvites(ctx, p.actor, newInvites(writes)); err != nil {
		return nil, nil, err
	}
	failed, err := s.Store.PutEnrollments(ctx, writes)
	if err != nil {
		return nil, nil, unavailable("bulk enroll: write enrollments", err)
	}
	s.logSkippedMail(ctx, writes)
	return writes, failed, nil
}

// sealInvitation sets the token hash of a new invitation.
func (s *Service) sealInvitation(e *Enrollment) {
	if e.State == StateInvited && e.TokenNonce != "" && e.TokenHash == "" {
		if len(s.Keys.Current.Secret) == 0 {
			panic("rollcall: an invitation was made by a function that has no signing key loaded")
		}
		e.TokenNonce = s.Keys.stampNonce(e.TokenNonce)
		e.TokenHash = TokenHash(InvitationToken(s.Keys.Current.Secret, e.ID, e.TokenNonce))
	}
}

// InvitationURL is the link an invitation's mail and the create response carry.
func (s *Service) InvitationToken(e *Enrollment) string {
	token, _ := s.Keys.TokenFor(e.ID, e.TokenNonce)
	return token
}

// registerLateSignups converts invitations just written for emails that now have an account,
// each with a lease-checked, version-checked write (a concurrent registration may be
// converting the same invitation: one of them does it, the other finds nothing to do).
//
// Most requests skip the reads: if no user was created since mark (read before the
// identifiers were resolved), every invitee's account state is the one the request saw.
func (s *Service) registerLateSignups(ctx context.Context, mark string, written []*Enrollment, failed map[string]error) error {
	var emails []string
	byEmail := map[string][]*Enrollment{}
	for _, e := range written {
		if e.State == StateInvited && e.Username == "" && failed[e.ID] == nil {
			if byEmail[e.Email] == nil {
				emails = append(emails, e.Email)
			}
			byEmail[e.Email] = append(byEmail[e.Email], e)
		}
	}
	if len(emails) == 0 {
		return nil
	}
	now, err := s.Store.RegistrationMark(ctx)
	if err != nil {
		return err
	}
	if now == mark {
		return nil
	}
	users, err := s.Store.ResolveIdentifiers(ctx, emails)
	if err != nil {
		return err
	}
	for email, u := range users {
		for _, e := range byEmail[email] {
			if err := s.registerOne(ctx, e.ID, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// registerOne applies Register to one enrollment of the user's email, if it is still an open
// invitation when written (a lease-checked, version-checked write).
func (s *Service) registerOne(ctx context.Context, id string, u *User) error {
	_, err := s.saveWithRetry(ctx, id, func(cur *Enrollment) (*Enrollment, error) {
		next, ok := Register(cur, u, Edit{Actor: u.Username, Source: SourceRegistration, Now: s.now()})
		if !ok {
			return nil, nil
		}
		return next, nil
	})
	return err
}

// bulkPlan computes a bulk request's results from before-states, in input order.
type bulkPlan struct {
	req        *BulkRequest
	courses    map[string]*Course
	users      map[string]*User
	actor      Actor
	now        time.Time
	results    map[string][]BulkResult // by course
	changed    map[string]*Enrollment  // by enrollment id
	resultIDs  map[string][]string     // by course: the enrollment id of each result ("" = none)
	lockedOnly map[string]bool         // when set, only these courses may change
}

func newBulkPlan(req *BulkRequest, courses map[string]*Course, users map[string]*User, actor Actor, now time.Time) *bulkPlan {
	return &bulkPlan{req: req, courses: courses, users: users, actor: actor, now: now,
		results: map[string][]BulkResult{}, changed: map[string]*Enrollment{}, resultIDs: map[string][]string{}}
}

// person resolves an identifier to (email, user); ok is false for an invalid identifier.
func (p *bulkPlan) person(identifier string) (email string, user *User, ok bool) {
	if u := p.users[identifier]; u != nil {
		return u.Email, u, true
	}
	if ValidEmail(identifier) {
		return NormalizeEmail(identifier), nil, true
	}
	return "", nil, false
}

// ids lists the enrollment ids the request touches in the given courses.
func (p *bulkPlan) ids(courses []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range courses {
		for _, ident := range p.req.Identifiers {
			if email, _, ok := p.person(ident); ok {
				id := EnrollmentID(c, email)
				if !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
	}
	return out
}

func (p *bulkPlan) run(before map[string]*Enrollment) {
	withCohort := p.req.Cohorts != nil
	for i, courseID := range p.req.Courses {
		state := map[string]*Enrollment{}
		done := map[string]bool{}
		results := make([]BulkResult, 0, len(p.req.Identifiers))
		ids := make([]string, 0, len(p.req.Identifiers))
		for _, ident := range p.req.Identifiers {
			email, user, ok := p.person(ident)
			if !ok {
				results = append(results, BulkResult{Identifier: ident, InvalidIdentifier: true})
				ids = append(ids, "")
				continue
			}
			id := EnrollmentID(courseID, email)
			cur, seen := state[id]
			if !seen {
				cur = before[id]
			}
			snap := SnapshotOf(cur, user != nil, p.now)
			res := BulkResult{Identifier: ident, Before: snap, After: snap, WithCohort: withCohort}
			if !done[id] {
				done[id] = true
				ed := Edit{Actor: p.actor.Username, Reason: p.req.Reason, Source: SourceBulk, Now: p.now,
					EmailOwed: p.req.EmailStudents, AutoEnroll: p.req.AutoEnroll, Course: p.courses[courseID]}
				if c := p.req.CohortFor(i); c != "" {
					ed.Cohort, ed.SetCohort = c, true
				}
				var next *Enrollment
				var changed bool
				if p.req.Action == "enroll" {
					next, changed = Enroll(cur, courseID, email, user, ed)
				} else {
					next, changed = Unenroll(cur, ed)
				}
				if changed && (p.lockedOnly == nil || p.lockedOnly[courseID]) {
					state[id] = next
					p.changed[id] = next
					res.After = SnapshotOf(next, user != nil, p.now)
				}
			}
			results = append(results, res)
			ids = append(ids, id)
		}
		p.results[courseID] = results
		p.resultIDs[courseID] = ids
	}
}

// changedCourses lists, sorted, the courses with at least one change.
func (p *bulkPlan) changedCourses() []string {
	set := map[string]bool{}
	for _, e := range p.changed {
		set[e.CourseID] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func (p *bulkPlan) writes() []*Enrollment {
	out := make([]*Enrollment, 0, len(p.changed))
	for _, e := range p.changed {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// markFailed reports the occurrences whose write failed as {"identifier", "error": true}.
func (p *bulkPlan) markFailed(failed map[string]error) {
	if len(failed) == 0 {
		return
	}
	for course, ids := range p.resultIDs {
		for i, id := range ids {
			if id != "" && failed[id] != nil {
				r := &p.results[course][i]
				*r = BulkResult{Identifier: r.Identifier, Error: true}
			}
		}
	}
}

func (p *bulkPlan) response() *BulkResponse {
	out := &BulkResponse{Action: p.req.Action, AutoEnroll: p.req.AutoEnroll, EmailStudents: p.req.EmailStudents,
		Courses: make(map[string]*CourseResults, len(p.req.Courses))}
	for _, c := range p.req.Courses {
		out.Courses[c] = &CourseResults{Action: p.req.Action, AutoEnroll: p.req.AutoEnroll, Results: p.results[c]}
	}
	return out
}

func distinct(xs []string) []string { return dedupe(xs) }

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// ---------------------------------------------------------------------------------------------
// Single-enrollment writes (everything but bulk): optimistic, retried on a version change or a
// busy course.

// saveWithRetry re-reads and re-applies edit until the write lands, the edit declines
// (returns nil), or the course stays busy past LeaseWait.
func (s *Service) saveWithRetry(ctx context.Context, id string, edit func(cur *Enrollment) (*Enrollment, error)) (*Enrollment, error) {
	deadline := time.Now().Add(s.leaseWait(ctx))
	pause := 10 * time.Millisecond
	for {
		cur, err := s.Store.GetEnrollment(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, unavailable("read enrollment", err)
		}
		if errors.Is(err, ErrNotFound) {
			cur = nil
		}
		next, err := edit(cur)
		if err != nil || next == nil || next == cur {
			return next, err
		}
		s.sealInvitation(next)
		var prev int64
		if cur != nil {
			prev = cur.Version
		}
		err = s.Store.SaveEnrollment(ctx, next, prev)
		if err == nil {
			return next, nil
		}
		if err := s.awaitRetry(ctx, err, deadline, &pause); err != nil {
			return nil, unavailable("save enrollment", err)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Courses

// CourseInput is the body of PUT /api/courses/{course_id}.
type CourseInput struct {
	Title             *string  `json:"title"`
	Cohorts           []string `json:"cohorts"`
	Admins            []string `json:"admins"`
	InvitationTTLDays *int     `json:"invitation_ttl_days"`
}

// PutCourse creates or replaces a course (staff only).
func (s *Service) PutCourse(ctx context.Context, actor Actor, id string, in CourseInput) (*Course, bool, error) {
	if err := actor.RequireStaff(); err != nil {
		return nil, false, err
	}
	v := &ValidationError{}
	if !ValidCourseKey(id) {
		v.Add("course_id", "Course key not valid: "+id)
	}
	c := &Course{ID: id, InvitationTTLDays: DefaultInvitationTTLDays, Cohorts: []string{}, Admins: []string{}}
	switch {
	case in.Title == nil:
		v.Add("title", "This field is required.")
	case strings.TrimSpace(*in.Title) == "":
		v.Add("title", "This field may not be blank.")
	case len(*in.Title) > 255:
		v.Add("title", "Ensure this field has no more than 255 characters.")
	case HasControl(*in.Title):
		v.Add("title", "This field may not contain control characters.")
	default:
		c.Title = strings.TrimSpace(*in.Title)
	}
	for _, name := range in.Cohorts {
		name = strings.TrimSpace(name)
		if name == "" || len(name) > 255 || strings.Contains(name, ",") || HasControl(name) {
			v.Add("cohorts", fmt.Sprintf("Not a valid cohort name: %q.", name))
			break
		}
		if !slices.Contains(c.Cohorts, name) {
			c.Cohorts = append(c.Cohorts, name)
		}
	}
	for _, a := range in.Admins {
		if !ValidUsername(a) {
			v.Add("admins", fmt.Sprintf("Not a valid username: %q.", a))
			break
		}
		c.Admins = append(c.Admins, a)
	}
	if in.InvitationTTLDays != nil {
		if d := *in.InvitationTTLDays; d < 1 || d > 365 {
			v.Add("invitation_ttl_days", "Ensure this value is between 1 and 365.")
		} else {
			c.InvitationTTLDays = d
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, false, err
	}
	if n := c.approxItemBytes(); n > MaxCourseItemBytes {
		return nil, false, NonFieldError(fmt.Sprintf("The course is too large to store (about %d KB of title, cohorts and admins; at most %d KB).", n/1000, MaxCourseItemBytes/1000))
	}
	now := s.now()
	c.CreatedAt, c.UpdatedAt = now, now
	if old, err := s.Store.GetCourse(ctx, id); err == nil {
		c.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, unavailable("put course", err)
	}
	created, err := s.Store.PutCourse(ctx, c)
	if err != nil {
		return nil, false, unavailable("put course", err)
	}
	return c, created, nil
}

// GetCourse returns a course to staff or one of its admins.
func (s *Service) GetCourse(ctx context.Context, actor Actor, id string) (*Course, error) {
	if !ValidCourseKey(id) {
		return nil, ErrNotFound
	}
	c, err := s.Store.GetCourse(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get course", err)
	}
	if !actor.Staff && !c.IsAdmin(actor.Username) {
		return nil, ErrNotFound // whoever may not see a course learns nothing of it, not even that it exists
	}
	return c, nil
}

// ---------------------------------------------------------------------------------------------
// Users

// UserInput is the body of POST /api/users.
type UserInput struct {
	Username *string `json:"username"`
	Email    *string `json:"email"`
}

// CreateUser registers an account (staff; the identity system's sign-up hook) and converts the
// email's open invitations (docs/api.md#courses-and-users).
func (s *Service) CreateUser(ctx context.Context, actor Actor, in UserInput) (*User, error) {
	if err := actor.RequireStaff(); err != nil {
		return nil, err
	}
	v := &ValidationError{}
	u := &User{CreatedAt: s.now()}
	switch {
	case in.Username == nil:
		v.Add("username", "This field is required.")
	case !ValidUsername(*in.Username):
		v.Add("username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.")
	default:
		u.Username = *in.Username
	}
	switch {
	case in.Email == nil:
		v.Add("email", "This field is required.")
	case !ValidEmail(strings.TrimSpace(*in.Email)):
		v.Add("email", "Enter a valid email address.")
	default:
		u.Email = NormalizeEmail(*in.Email)
	}
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	if err := s.Register(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Register stores a new user and converts the open invitations of its email. Used by the
// users API and by accepting an invitation without an account.
func (s *Service) Register(ctx context.Context, u *User) error {
	if err := s.Store.CreateUser(ctx, u); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			return err
		}
		return unavailable("create user", err)
	}
	return s.convertInvitations(ctx, u)
}

// convertInvitations applies Register to each open invitation of the user's email.
func (s *Service) convertInvitations(ctx context.Context, u *User) error {
	es, err := s.Store.PersonEnrollments(ctx, u.Email)
	if err != nil {
		return unavailable("list invitations", err)
	}
	for _, e := range es {
		if e.State != StateInvited {
			continue
		}
		if err := s.registerOne(ctx, e.ID, u); err != nil {
			return err
		}
	}
	return nil
}

// GetUser returns a user to staff or to the user.
func (s *Service) GetUser(ctx context.Context, actor Actor, username string) (*User, error) {
	if !ValidUsername(username) {
		return nil, ErrNotFound // no account has such a name; it never reaches the store
	}
	if !actor.Staff && NormalizeUsername(actor.Username) != NormalizeUsername(username) {
		return nil, ErrForbidden
	}
	u, err := s.Store.GetUser(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get user", err)
	}
	return u, nil
}
