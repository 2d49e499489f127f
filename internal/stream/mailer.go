package stream

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/retry"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// MailStore is what the mailer reads and writes in the table.
type MailStore interface {
	GetEnrollments(ctx context.Context, ids []string) (map[string]*rollcall.Enrollment, error)
	GetCourses(ctx context.Context, ids []string) (map[string]*rollcall.Course, error)
	MailSent(ctx context.Context, refs []rollcall.MailRef) (map[rollcall.MailRef]bool, error)
	MarkMailSent(ctx context.Context, refs []rollcall.MailRef, outcome map[rollcall.MailRef]string, now time.Time) (map[rollcall.MailRef]error, error)
	// ClearMailOwed takes mail that was dealt with out of the owed-mail index.
	ClearMailOwed(ctx context.Context, refs []rollcall.MailRef) (int, error)
}

// MailSender sends one template kind to many destinations (the domain's mail port).
type MailSender = rollcall.MailSender

// Mailer is the MailerFunction: it sends the mail that enrollment changes owe (docs/api.md#mail),
// and the job_finished mail of roster jobs that ended (jobmail.go).
//
// A record owes mail when its new image's mail_seq is greater than its old image's; the mail is
// (enrollment id, mail_seq). Mail already marked sent (a re-delivered record) is dropped, so a
// retried batch mails nobody twice; an invitation whose token has since changed or ended is not
// mailed (its link would be dead). What SES accepts is marked sent; records whose mail failed in a
// way that may pass are reported as batch item failures, and Lambda delivers them again. Mail
// dealt with (sent, rejected, stale, already sent) leaves the owed-mail index; mail that is not
// stays there for the Sweeper once the stream has given up on its record.
type Mailer struct {
	Store  MailStore
	Sender MailSender
	// Keys derive invitation tokens (the signing key ring); BaseURL is where their pages are.
	Keys    rollcall.KeyRing
	BaseURL string
	Log     *slog.Logger
	Now     func() time.Time
	// Margin is kept free before the invocation's deadline: no send starts later (default 5 s).
	Margin time.Duration
	// Metrics receives the invocation's mail counts (nil: none are kept).
	Metrics rollcall.Metrics
	// Items decodes the stream's images (dynamo.Images).
	Items Items
	// Prefs reads registered learners' pref-lang and time_zone, which choose the language of
	// their mail and the zone of its dates (nil: English, UTC).
	Prefs MailPreferenceReader
	// Jobs reads and marks finished roster jobs, whose creators get the job_finished mail
	// (nil: job records are ignored).
	Jobs JobMailStore
}

// owedMail is one mail a record owes.
type owedMail struct {
	seq  string // stream sequence number of the record (the enrollment id in a sweep)
	ref  rollcall.MailRef
	kind rollcall.MailKind
	e    *rollcall.Enrollment // the new image
	lang string               // the mail's language (MailLanguage; "" = English)
	loc  *time.Location       // the learner's time zone (nil = UTC)
}

func (m *Mailer) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

func (m *Mailer) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

// MailStats counts what one invocation did.
type MailStats struct {
	Owed, AlreadySent, Stale, Sent, Rejected, Failed int
}

// Handle is the Lambda handler.
func (m *Mailer) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	resp, _ := m.Process(ctx, ev)
	return resp, nil
}

// Process handles a batch and also returns its counts.
func (m *Mailer) Process(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, MailStats) {
	start := time.Now()
	var st MailStats
	changes, bad := Changes(ev, m.Items)
	var jobs []owedJobMail
	if m.Jobs != nil {
		jobs, bad = jobMailOwed(ev, m.Items, bad)
	}
	for seq, err := range bad {
		m.log().ErrorContext(ctx, "mailer: undecodable record skipped", "sequence_number", seq, "error", err.Error())
	}
	var owed []owedMail
	for _, c := range changes {
		if c.New == nil || c.New.MailSeq <= seqOf(c.Old) {
			continue
		}
		if !knownKind(c.New.MailKind) {
			m.log().ErrorContext(ctx, "mailer: unknown mail kind skipped", "enrollment_id", c.New.ID, "mail_kind", c.New.MailKind)
			continue
		}
		owed = append(owed, owedMail{seq: c.Seq, ref: rollcall.MailRef{EnrollmentID: c.New.ID, Seq: c.New.MailSeq}, kind: c.New.MailKind, e: c.New})
	}
	st.Owed = len(owed) + len(jobs)
	if st.Owed == 0 {
		return failures(ev, nil), st
	}
	failed := map[string]bool{}
	if len(owed) > 0 {
		failed = m.deliver(ctx, owed, nil, &st, false)
	}
	for seq := range m.mailJobs(ctx, jobs, &st, false) {
		failed[seq] = true
	}
	m.logDone(ctx, st, start)
	m.emit(ctx, st.Sent, st.Failed, st.Rejected)
	return failures(ev, failed), st
}

// mailKinds are the template kinds, in the order a wave sends them.
var mailKinds = []rollcall.MailKind{rollcall.MailInvited, rollcall.MailReminder, rollcall.MailEnrolled,
	rollcall.MailEnrollmentEnding, rollcall.MailUnenrolled}

// linksInvitation reports the mail that carries the invitation's link: sent only while that
// invitation is still open with the same token.
func linksInvitation(k rollcall.MailKind) bool {
	return k == rollcall.MailInvited || k == rollcall.MailReminder
}

func knownKind(k rollcall.MailKind) bool {
	switch k {
	case rollcall.MailEnrolled, rollcall.MailInvited, rollcall.MailUnenrolled, rollcall.MailReminder, rollcall.MailEnrollmentEnding:
		return true
	}
	return false
}

// deliver sends owed mail that is not marked sent yet, marks what went out and takes what was
// dealt with out of the owed-mail index. current holds the enrollments as they are now, if the
// caller read them (the sweep); else invitations are read here. It returns the owedMail.seq
// of the mails to try again.
//
// clearSent takes what went out out of the owed-mail index at once (the sweep); the stream
// mailer leaves it to the sweep (see sendBatch).
func (m *Mailer) deliver(ctx context.Context, owed []owedMail, current map[string]*rollcall.Enrollment, st *MailStats, clearSent bool) map[string]bool {
	failed := map[string]bool{}
	failAll := func(what string, err error) map[string]bool {
		m.log().ErrorContext(ctx, "mailer: "+what+" failed; the mail is retried", "error", err.Error(), "owed", len(owed))
		for _, o := range owed {
			failed[o.seq] = true
		}
		st.Failed += len(owed)
		return failed
	}
	var resolved []rollcall.MailRef // dealt with: out of the owed-mail index
	defer func() { m.clearOwed(ctx, resolved) }()

	// What a previous delivery of these records sent already, the invitations as they are now
	// (an invitation is mailed only while its token is the enrollment's current, open one) and
	// the courses: three independent batched reads, made at once.
	refs := make([]rollcall.MailRef, len(owed))
	courseIDs := make([]string, 0, len(owed))
	var inviteIDs []string
	for i, o := range owed {
		refs[i] = o.ref
		courseIDs = append(courseIDs, o.e.CourseID)
		if linksInvitation(o.kind) {
			inviteIDs = append(inviteIDs, o.ref.EnrollmentID)
		}
	}
	var (
		sent                       map[rollcall.MailRef]bool
		courses                    map[string]*rollcall.Course
		sentErr, curErr, courseErr error
		reads                      sync.WaitGroup
	)
	reads.Add(2)
	go func() { defer reads.Done(); sent, sentErr = m.Store.MailSent(ctx, refs) }()
	go func() { defer reads.Done(); courses, courseErr = m.Store.GetCourses(ctx, courseIDs) }()
	if current == nil {
		current = map[string]*rollcall.Enrollment{}
		if len(inviteIDs) > 0 {
			current, curErr = m.Store.GetEnrollments(ctx, inviteIDs)
		}
	}
	reads.Wait()
	switch {
	case sentErr != nil:
		return failAll("reading mail-sent markers", sentErr)
	case curErr != nil:
		return failAll("reading invitations", curErr)
	case courseErr != nil:
		return failAll("reading courses", courseErr)
	}
	now := m.now()
	var todo []owedMail
	for _, o := range owed {
		switch {
		case sent[o.ref]:
			st.AlreadySent++
			resolved = append(resolved, o.ref)
		case linksInvitation(o.kind) && !stillOpen(o.e, current[o.ref.EnrollmentID], now):
			st.Stale++
			resolved = append(resolved, o.ref)
			m.log().InfoContext(ctx, "mailer: invitation moved on before its mail went out; not sent",
				"enrollment_id", o.ref.EnrollmentID, "mail_seq", o.ref.Seq)
		case linksInvitation(o.kind) && !m.canLink(o.e):
			st.Stale++
			m.log().ErrorContext(ctx, "mailer: the key that made this invitation's link is no longer in the key ring; not sent",
				"enrollment_id", o.ref.EnrollmentID, "mail_seq", o.ref.Seq)
		default:
			todo = append(todo, o)
		}
	}
	if len(todo) == 0 {
		return failed
	}

	if err := m.localize(ctx, todo); err != nil {
		return failAll("reading mail preferences", err)
	}

	// Waves keep each enrollment's mails in order (enrolled, then unenrolled); within a wave,
	// one SendBulkEmail per template (kind and language) carries up to 50 destinations.
	failedIDs := map[string]bool{}
	var marking sync.WaitGroup // each chunk's markers are written while the next one is sent
	defer marking.Wait()
	for _, wave := range waves(todo) {
		for _, kl := range kindsAndLanguages {
			kind := kl.kind
			var batch []owedMail
			for _, o := range wave {
				if o.kind != kind || o.lang != kl.lang {
					continue
				}
				if failedIDs[o.ref.EnrollmentID] {
					// An earlier mail of this enrollment failed: keep the order, retry both.
					failed[o.seq] = true
					st.Failed++
					continue
				}
				batch = append(batch, o)
			}
			if len(batch) == 0 {
				continue
			}
			m.sendBatch(ctx, kind, kl.lang, batch, courses, failed, st, &marking, clearSent)
		}
		for _, o := range wave {
			if failed[o.seq] {
				failedIDs[o.ref.EnrollmentID] = true
			}
		}
	}
	return failed
}

// clearOwed takes mail that was dealt with out of the owed-mail index (best effort: what stays
// is found by the sweep, which sees its marker and clears it then).
func (m *Mailer) clearOwed(ctx context.Context, refs []rollcall.MailRef) {
	if len(refs) == 0 {
		return
	}
	if _, err := m.Store.ClearMailOwed(context.WithoutCancel(ctx), refs); err != nil {
		m.log().WarnContext(ctx, "mailer: could not clear owed mail; the sweep will", "mails", len(refs), "error", err.Error())
	}
}

func (m *Mailer) logDone(ctx context.Context, st MailStats, start time.Time) {
	level := m.log().InfoContext
	if st.Failed > 0 {
		level = m.log().WarnContext
	}
	level(ctx, "mailer: batch done", "owed", st.Owed, "already_sent", st.AlreadySent, "stale", st.Stale,
		"sent", st.Sent, "rejected", st.Rejected, "failed", st.Failed, "duration_ms", time.Since(start).Milliseconds())
}

// kindsAndLanguages is every template: each kind in each language.
var kindsAndLanguages = func() (out []struct {
	kind rollcall.MailKind
	lang string
}) {
	for _, k := range mailKinds {
		for _, l := range MailLanguages {
			out = append(out, struct {
				kind rollcall.MailKind
				lang string
			}{k, l})
		}
	}
	return out
}()

// sendBatch sends one template's (kind and language) mails of a wave and, in the background
// (marking), marks what went out, so that the next chunk goes out meanwhile. What went out
// stays in the owed-mail index for the sweep to remove
// (docs/data-model.md#mail-nothing-lost-nothing-sent-twice): one UpdateItem per mail would
// double the mailer's time.
func (m *Mailer) sendBatch(ctx context.Context, kind rollcall.MailKind, lang string, batch []owedMail, courses map[string]*rollcall.Course, failed map[string]bool, st *MailStats, marking *sync.WaitGroup, clearSent bool) {
	for lo := 0; lo < len(batch); lo += rollcall.MaxMailDestinations {
		chunk := batch[lo:min(lo+rollcall.MaxMailDestinations, len(batch))]
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < m.margin() {
			for _, o := range chunk {
				failed[o.seq] = true
			}
			st.Failed += len(chunk)
			m.log().WarnContext(ctx, "mailer: too close to the deadline; left for the retry", "kind", kind, "mails", len(chunk))
			continue
		}
		msgs := make([]rollcall.MailMessage, len(chunk))
		for i, o := range chunk {
			msgs[i] = rollcall.MailMessage{To: o.e.Email, Data: m.templateData(o, courses[o.e.CourseID])}
		}
		results := m.Sender.Send(ctx, TemplateKind(kind, lang), msgs)
		var done, givenUp []rollcall.MailRef
		outcome := map[rollcall.MailRef]string{}
		retried := map[string]int{} // by status
		var firstErr error
		for i, r := range results {
			o := chunk[i]
			switch r.Outcome {
			case rollcall.MailAccepted:
				st.Sent++
				done = append(done, o.ref)
				outcome[o.ref] = "sent " + r.MessageID
			case rollcall.MailRejected:
				// Sending again would fail the same way: record it and move on.
				st.Rejected++
				done = append(done, o.ref)
				givenUp = append(givenUp, o.ref)
				outcome[o.ref] = "rejected " + r.Status
				m.log().ErrorContext(ctx, "mailer: SES rejected a mail; not retried", "enrollment_id", o.ref.EnrollmentID,
					"mail_seq", o.ref.Seq, "kind", kind, "status", r.Status, "error", errString(r.Err))
			default:
				st.Failed++
				failed[o.seq] = true
				retried[r.Status]++
				if firstErr == nil {
					firstErr = r.Err
				}
			}
		}
		if len(retried) > 0 {
			m.log().WarnContext(ctx, "mailer: mail failed; retried", "kind", kind, "destinations", len(chunk),
				"failed_by_status", retried, "error", errString(firstErr))
		}
		marking.Add(1)
		go func() {
			defer marking.Done()
			unmarked := m.mark(ctx, done, outcome)
			if clearSent {
				m.clearOwed(ctx, done)
				return
			}
			// What was given up, and a mail whose marker could not be written, leave the
			// index now: the sweep would send them again.
			m.clearOwed(ctx, append(givenUp, unmarked...))
		}()
	}
}

// mark writes the mail-sent markers, retrying a few times, and returns those it could not
// write. Those are logged, not failed: the mail went out, and failing the record would send it
// again.
func (m *Mailer) mark(ctx context.Context, refs []rollcall.MailRef, outcome map[rollcall.MailRef]string) (unmarked []rollcall.MailRef) {
	for attempt := 0; len(refs) > 0 && attempt < 4; attempt++ {
		if attempt > 0 {
			// The mail went out: once ctx has ended, write the markers without pausing.
			_ = retry.Pause(ctx, attempt, 100*time.Millisecond, time.Second)
		}
		failedRefs, err := m.Store.MarkMailSent(context.WithoutCancel(ctx), refs, outcome, m.now())
		if err == nil && len(failedRefs) == 0 {
			return nil
		}
		var retry []rollcall.MailRef
		for _, r := range refs {
			if failedRefs[r] != nil || (err != nil && len(failedRefs) == 0) {
				retry = append(retry, r)
			}
		}
		refs = retry
	}
	if len(refs) > 0 {
		m.log().ErrorContext(ctx, "mailer: mail sent but its marker could not be written; a re-delivery may send it again",
			"mails", len(refs))
	}
	return refs
}

func (m *Mailer) margin() time.Duration {
	if m.Margin > 0 {
		return m.Margin
	}
	return 5 * time.Second
}

// templateData is the data of the rollcall-<stage>-<kind> templates: every template gets
// every key (SES fails a rendering with a missing one).
func (m *Mailer) templateData(o owedMail, c *rollcall.Course) map[string]string {
	e := o.e
	title := e.CourseID
	if c != nil && c.Title != "" {
		title = c.Title
	}
	name := e.Username
	if name == "" {
		name = e.Email
		if at := strings.LastIndexByte(name, '@'); at > 0 {
			name = name[:at]
		}
	}
	// The *_html values go into the templates' HtmlPart: data is escaped here rather than
	// trusting the renderer to (a course title may hold "<" or "&").
	d := map[string]string{"name": name, "course_title": title, "course_id": e.CourseID, "invitation_url": "", "expires_at": "",
		"name_html": html.EscapeString(name), "course_title_html": html.EscapeString(title), "course_id_html": html.EscapeString(e.CourseID)}
	if o.kind == rollcall.MailEnrollmentEnding {
		d["end_at"] = HumanTime(e.EndAt)
	}
	if linksInvitation(o.kind) {
		token, _ := m.Keys.TokenFor(e.ID, e.TokenNonce)
		d["invitation_url"] = strings.TrimRight(m.BaseURL, "/") + "/invitations/" + token
		d["expires_at"] = HumanTimeIn(e.ExpiresAt, o.lang, o.loc)
	}
	return d
}

// HumanTime is how mail shows a time: "7 December 2026, 09:00 UTC".
func HumanTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 January 2006, 15:04 UTC")
}

// canLink reports whether the invitation's link can still be made: the key its token was
// derived with is still in the ring (a rotation keeps the previous key; two drop it).
func (m *Mailer) canLink(e *rollcall.Enrollment) bool {
	_, ok := m.Keys.ForNonce(e.TokenNonce)
	return ok
}

// stillOpen reports whether an invitation mail (for the new image e) is still worth sending:
// the enrollment is still that open invitation, with the same token, not past its expiry.
func stillOpen(e, cur *rollcall.Enrollment, now time.Time) bool {
	return e.TokenNonce != "" && cur != nil && cur.TokenNonce == e.TokenNonce &&
		cur.Effective(now) == rollcall.StateInvited
}

// waves splits mails so that each enrollment appears at most once per wave, in order.
func waves(ms []owedMail) [][]owedMail {
	var out [][]owedMail
	count := map[string]int{}
	for _, o := range ms {
		n := count[o.ref.EnrollmentID]
		count[o.ref.EnrollmentID] = n + 1
		if n == len(out) {
			out = append(out, nil)
		}
		out[n] = append(out[n], o)
	}
	return out
}

func seqOf(e *rollcall.Enrollment) int64 {
	if e == nil {
		return 0
	}
	return e.MailSeq
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// String describes stats for logs and tests.
func (s MailStats) String() string {
	return fmt.Sprintf("owed=%d already_sent=%d stale=%d sent=%d rejected=%d failed=%d", s.Owed, s.AlreadySent, s.Stale, s.Sent, s.Rejected, s.Failed)
}
