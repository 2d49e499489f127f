package rollcall

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

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
		return nil, &TooLargeError{Detail: fmt.Sprintf("A request may carry at most %d identifier x course pairs; this one has %d. "+
			"Send larger rosters as a job: POST %s.", MaxBulkPairs, req.Pairs(), JobsPath)}
	}
	return s.runBulkRequest(ctx, actor, req, courses, false)
}

// runBulkRequest runs a validated bulk request whose caller may enroll into its courses
// (courses: those already read, or nil). Synchronous bulk enroll and every chunk of a roster
// job come through here, so a row of a job gets exactly what bulk enroll would give it.
// A dry run decides every result from the same reads and writes nothing.
func (s *Service) runBulkRequest(ctx context.Context, actor Actor, req *BulkRequest, courses map[string]*Course, dryRun bool) (*BulkResponse, error) {
	var err error
	// A small request resolves its identifiers and reads its before-states while its
	// courses are read: the round trips of the path every small request takes.
	var (
		reading chan readResult
		trace   *bulkTrace
	)
	if !dryRun && s.fitsOneCommit(req) {
		trace = newBulkTrace()
		if courses == nil {
			trace.calls++ // GetCourses
		}
		reading = make(chan readResult, 1)
		go func() { reading <- s.resolveAndRead(ctx, req, s.startResolve(ctx, req)) }()
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
	if err := checkRoleAndMode(actor, req, courses); err != nil {
		return nil, err
	}

	if dryRun {
		r := s.resolveAndRead(ctx, req, s.startResolve(ctx, req))
		if r.err != nil {
			return nil, r.err
		}
		plan := newBulkPlan(req, courses, r.users, actor, s.now())
		plan.run(r.before)
		return plan.response(), nil
	}

	// A small request commits optimistically in one transaction: no lease to take, so small
	// requests on a course do not queue behind one another (only real conflicts retry). It
	// reads no registration mark: after its write it looks its few invitees up again instead
	// (see registerLateSignups), fewer keys than the mark's counters, read twice.
	if reading != nil {
		r := <-reading
		since(&trace.resolve, trace.start)
		trace.calls += r.calls
		if r.err != nil {
			return nil, r.err
		}
		resp, err := s.bulkCommit(ctx, req, courses, r.users, r.before, actor, "", trace)
		outcome := "ok"
		if err != nil {
			outcome = err.Error()
		}
		trace.log(ctx, s.log(), outcome)
		return resp, err
	}

	// Read before anything is resolved: a user created after this mark may have missed the
	// invitations this request writes (see registerLateSignups).
	regMark, err := s.Store.RegistrationMark(ctx)
	if err != nil {
		return nil, unavailable("bulk enroll: read registration mark", err)
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
	// The identifiers resolve (outside the lease: a registration after regMark is caught
	// after the write) while the sample is read and the lease taken.
	lookup := s.startResolve(ctx, req)
	changes, err := s.sampleChanges(ctx, req, courses, actor)
	if err != nil {
		return nil, err
	}
	if changes {
		locked = dedupe(req.Courses) // LockCourses takes them in sorted order
		if unlock, err = s.Store.LockCourses(ctx, locked, owner, s.leaseTTL(), s.leaseWait(ctx)); err != nil {
			return nil, unavailable("bulk enroll: lock courses", err)
		}
		onLocked(ctx)
	}
	r := s.resolveAndRead(ctx, req, lookup)
	if r.err != nil {
		unlock(context.WithoutCancel(ctx))
		return nil, r.err
	}
	users, before := r.users, r.before
	plan := newBulkPlan(req, courses, users, actor, s.now())
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
		onLocked(ctx)
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
	people, courses := len(dedupe(req.Identifiers)), len(dedupe(req.Courses))
	return people*courses+courses <= limit
}

// bulkCommit runs a small bulk request optimistically: read every before-state, decide, and
// commit the changes in one transaction on condition that nothing read has changed and no
// lease holds the courses. A conflict means another writer got there first: read again and
// decide again (its result is then this request's before-state, as in a serial order). A
// course leased by a large request is waited for.
func (s *Service) bulkCommit(ctx context.Context, req *BulkRequest, courses map[string]*Course, users map[string]*User,
	first map[string]*Enrollment, actor Actor, regMark string, trace *bulkTrace) (*BulkResponse, error) {
	ids := newBulkPlan(req, courses, users, actor, s.now()).ids(req.Courses)
	courseIDs := dedupe(req.Courses)
	deadline := time.Now().Add(s.leaseWait(ctx))
	pause := 10 * time.Millisecond
	reserved := 0 // of the actor's daily invitation quota, over the retries
	// The seqs a refused attempt reserved for the enrollments it would have created: a retry
	// that still creates them reuses them instead of writing the course's counter again (a
	// write that, on a busy store, queues like the commit itself).
	seqs := map[string]int64{}
	for {
		t0 := time.Now()
		var err error
		before := first // the first attempt's before-states come with the resolve
		if before == nil {
			before, err = s.Store.GetEnrollments(ctx, ids)
			trace.calls++
			t0 = since(&trace.read, t0)
			if err != nil {
				return nil, unavailable("bulk enroll: read enrollments", err)
			}
		}
		first = nil
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
			if !actor.Staff {
				trace.calls++
			}
			if err := s.reserveInvites(ctx, actor, n-reserved); err != nil {
				return nil, err
			}
			reserved = n
		}
		for _, e := range writes {
			if e.Seq == 0 {
				e.Seq = seqs[e.ID]
			}
		}
		trace.calls += 1 + newSeqCourses(writes) // the transaction, and a seq reservation per course
		trace.attempts++
		err = s.Store.CommitEnrollments(ctx, courseIDs, read, writes)
		t0 = since(&trace.commit, t0)
		if err == nil {
			s.logSkippedMail(ctx, writes)
			if hasInvitees(writes) {
				trace.calls++
			}
			err := s.registerLateSignups(ctx, regMark, writes, nil)
			since(&trace.late, t0)
			if err != nil {
				return nil, unavailable("bulk enroll: check new accounts", err)
			}
			return plan.response(), nil
		}
		trace.refused(err)
		for _, e := range writes {
			if before[e.ID] == nil && e.Seq != 0 {
				seqs[e.ID] = e.Seq
			}
		}
		err = s.awaitRetry(ctx, err, deadline, &pause)
		since(&trace.backoff, t0)
		if err != nil {
			return nil, unavailable("bulk enroll: commit enrollments", err)
		}
	}
}

// newSeqCourses counts the courses of writes that need a seq reserved (new enrollments).
func newSeqCourses(writes []*Enrollment) int {
	seen := map[string]bool{}
	for _, e := range writes {
		if e.Seq == 0 {
			seen[e.CourseID] = true
		}
	}
	return len(seen)
}

// hasInvitees says whether registerLateSignups will look anyone up after writes.
func hasInvitees(writes []*Enrollment) bool {
	for _, e := range writes {
		if e.State == StateInvited && e.Username == "" {
			return true
		}
	}
	return false
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

// sampleSize is how many email identifiers sampleChanges samples (in every course).
const sampleSize = 20

// sampleChanges reads the before-states of the first few email identifiers (whose
// enrollment ids need no lookup) to say whether the request would change any of them. The
// sample is read without a lease and decides nothing: runBulkRequest uses it only to choose
// whether to lock before reading.
func (s *Service) sampleChanges(ctx context.Context, req *BulkRequest, courses map[string]*Course, actor Actor) (bool, error) {
	var sample []string
	for _, ident := range req.Identifiers {
		if ValidEmail(ident) {
			sample = append(sample, ident)
			if len(sample) == sampleSize {
				break
			}
		}
	}
	if len(sample) == 0 {
		return false, nil
	}
	sub := *req
	sub.Identifiers = sample
	p := newBulkPlan(&sub, courses, nil, actor, s.now())
	before, err := s.Store.GetEnrollments(ctx, p.ids(req.Courses))
	if err != nil {
		return false, unavailable("bulk enroll: read enrollments", err)
	}
	p.run(before)
	return len(p.changed) > 0, nil
}

// userLookup is a ResolveIdentifiers call under way (startResolve).
type userLookup struct {
	done  chan struct{}
	users map[string]*User
	err   error
}

// startResolve starts resolving a request's identifiers.
func (s *Service) startResolve(ctx context.Context, req *BulkRequest) *userLookup {
	l := &userLookup{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.users, l.err = s.Store.ResolveIdentifiers(ctx, Resolvable(req.Identifiers))
	}()
	return l
}

// readResult is what resolveAndRead found: the users behind the identifiers, the
// before-state of every enrollment the request touches, and the store calls it took.
type readResult struct {
	users  map[string]*User
	before map[string]*Enrollment
	calls  int
	err    error
}

// resolveAndRead reads the before-states of every enrollment the request touches while its
// identifiers resolve (lookup). An email identifier's enrollment id needs no lookup, so those
// reads overlap the resolve; only the enrollments of usernames wait for it. In a large
// request the caller holds the leases by now, and every before-state is read under them.
func (s *Service) resolveAndRead(ctx context.Context, req *BulkRequest, lookup *userLookup) readResult {
	r := readResult{calls: 1}
	early := newBulkPlan(req, nil, nil, Actor{}, time.Time{}).ids(req.Courses)
	before, readErr := s.Store.GetEnrollments(ctx, early)
	if len(early) > 0 {
		r.calls++
	}
	<-lookup.done
	switch {
	case lookup.err != nil:
		r.err = unavailable("bulk enroll: resolve identifiers", lookup.err)
		return r
	case readErr != nil:
		r.err = unavailable("bulk enroll: read enrollments", readErr)
		return r
	}
	read := toSet(early)
	var rest []string
	for _, id := range newBulkPlan(req, nil, lookup.users, Actor{}, time.Time{}).ids(req.Courses) {
		if !read[id] {
			rest = append(rest, id)
		}
	}
	if before == nil {
		before = map[string]*Enrollment{} // non-nil: bulkCommit takes nil for "not read yet"
	}
	if len(rest) > 0 {
		r.calls++
		more, err := s.Store.GetEnrollments(ctx, rest)
		if err != nil {
			r.err = unavailable("bulk enroll: read enrollments", err)
			return r
		}
		for id, e := range more {
			before[id] = e
		}
	}
	r.users, r.before = lookup.users, before
	return r
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
// A large request mostly skips the reads: if no user was created since mark (read before the
// identifiers were resolved), every invitee's account state is the one the request saw. A
// small one passes no mark ("") and always looks its invitees up (a handful of keys).
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
	if mark != "" {
		now, err := s.Store.RegistrationMark(ctx)
		if err != nil {
			return err
		}
		if now == mark {
			return nil
		}
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
