package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/stream"
	"github.com/rollcall/rollcall/internal/testenv"
)

// Registered learners get "enrolled" and "unenrolled" mail; a no-op repeat and a change
// without email_students mail nobody.
func TestMailEnrolledUnenrolled(t *testing.T) {
	h := newHarness(t, options{})
	h.putCourse(course, "Mail course")
	addr := strings.ToLower(testenv.Address("learner"))
	h.createUser("mail_learner", addr)
	quiet := strings.ToLower(testenv.Address("quiet"))
	h.createUser("quiet_learner", quiet)

	h.bulk("enroll", course, []string{"mail_learner"}, true, false)
	h.bulk("enroll", course, []string{"mail_learner"}, true, false) // no-op
	h.bulk("enroll", course, []string{"quiet_learner"}, false, false)
	mails := testenv.WaitForEmails(t, addr, 1, 20*time.Second)
	if mails[0].Subject != "You have been enrolled in Mail course" || !strings.Contains(mails[0].Body.Text, "Dear mail_learner,") ||
		!strings.Contains(mails[0].Body.Text, "("+course+")") {
		t.Fatalf("enrolled mail: %q\n%s", mails[0].Subject, mails[0].Body.Text)
	}

	h.bulk("unenroll", course, []string{addr}, true, false)
	mails = testenv.WaitForEmails(t, addr, 2, 20*time.Second)
	if mails[1].Subject != "You have been unenrolled from Mail course" {
		t.Fatalf("unenrolled mail: %q", mails[1].Subject)
	}
	// Give the stream time to deliver anything else it might (it should not).
	waitAudit(t, h, course, addr, 2)
	waitAudit(t, h, course, quiet, 1)
	time.Sleep(500 * time.Millisecond)
	if n := len(testenv.Emails(t, addr)); n != 2 {
		t.Errorf("%d mails to %s, want 2", n, addr)
	}
	if n := len(testenv.Emails(t, quiet)); n != 0 {
		t.Errorf("%d mails to %s without email_students", n, quiet)
	}
}

func waitAudit(t *testing.T, h *harness, course, email string, n int) {
	t.Helper()
	id := h.enrollment(course, email).ID
	waitFor(t, 20*time.Second, "audit entries", func() bool {
		es, err := h.deps.Store.AuditEntries(context.Background(), id)
		return err == nil && len(es) >= n
	})
}

// The emulator is down while mail is owed: the mailer reports the records as failed, the
// event source retries them, and once the emulator is back every mail goes out exactly once.
func TestMailOutageRetriedExactlyOnce(t *testing.T) {
	testenv.Start(t)
	port, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	sesSvc, err := localstack.StartSES(ctx, localstack.SESOptions{Port: port, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sesSvc.Stop() })
	if err := sesSvc.Stop(); err != nil { // down from the start: nothing can be sent
		t.Fatal(err)
	}
	h := newHarness(t, options{sesEndpoint: sesSvc.Endpoint, instrument: true})
	h.putCourse(course, "Outage course")
	const n = 120
	a := addresses("outage", n)
	h.bulk("enroll", course, a, true, false)

	waitFor(t, 30*time.Second, "mailer batches reported as failed", func() bool {
		failed := 0
		for _, b := range h.mailBatches() {
			failed += b.failures
		}
		return failed >= 1 && len(h.mailBatches()) >= 2
	})
	for _, b := range h.mailBatches() {
		if b.stats.Owed == 0 {
			continue
		}
		if b.stats.Sent != 0 || b.failures != b.stats.Failed || b.failures == 0 {
			t.Fatalf("batch during the outage: %+v", b)
		}
	}

	// Back up, on the same port, with the templates (the emulator keeps them in memory).
	sesSvc, err = localstack.StartSES(ctx, localstack.SESOptions{Port: port, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sesSvc.Stop() })
	if err := localstack.EnsureEmailTemplates(ctx, localstack.NewSESClient(sesSvc.Endpoint), testenv.Start(t).Template, testenv.Stage); err != nil {
		t.Fatal(err)
	}
	want := set(a)
	waitFor(t, 60*time.Second, "every mail after the outage", func() bool {
		emails, err := storeEmails(sesSvc.Endpoint)
		return err == nil && len(countTo(emails, want)) == n
	})
	time.Sleep(time.Second) // anything still in flight
	emails, err := storeEmails(sesSvc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for addr, c := range countTo(emails, want) {
		if c != 1 {
			t.Errorf("%s got %d mails", addr, c)
		}
	}
	if len(emails) != n {
		t.Errorf("%d mails in the store, want %d", len(emails), n)
	}
	t.Logf("%d mailer invocations, %d SendBulkEmail calls", len(h.mailBatches()), h.sender.Calls())
}

// flaky fails every other destination of its first call for each address (without sending
// it), as SES reports per-destination failures; later calls go through.
type flaky struct {
	inner *ses.Sender
	mu    sync.Mutex
	seen  map[string]bool
}

func (f *flaky) Send(ctx context.Context, kind string, msgs []ses.Message) []ses.Result {
	results := make([]ses.Result, len(msgs))
	var pass []ses.Message
	var idx []int
	f.mu.Lock()
	for i, m := range msgs {
		if !f.seen[m.To] && i%2 == 1 {
			f.seen[m.To] = true
			results[i] = ses.Result{Outcome: ses.Retry, Status: "TRANSIENT_FAILURE"}
			continue
		}
		f.seen[m.To] = true
		pass = append(pass, m)
		idx = append(idx, i)
	}
	f.mu.Unlock()
	for i, r := range f.inner.Send(ctx, kind, pass) {
		results[idx[i]] = r
	}
	return results
}

// Partial failures inside batches, and every batch delivered twice: the failed destinations
// are retried, and still nobody gets a mail twice.
func TestMailPartialFailuresAndRedelivery(t *testing.T) {
	var f *flaky
	h := newHarness(t, options{instrument: true, redeliver: true, wrap: func(s *ses.Sender) stream.MailSender {
		f = &flaky{inner: s, seen: map[string]bool{}}
		return f
	}})
	h.putCourse(course, "Flaky course")
	const n = 150
	a := addresses("flaky", n)
	h.bulk("enroll", course, a, true, false)
	want := set(a)
	waitFor(t, 60*time.Second, "every mail", func() bool {
		return len(countTo(testenv.Emails(t, ""), want)) == n
	})
	// A delivery's counts are recorded when it returns, after its markers are written: the
	// last mail can reach the emulator well before that on a busy machine, so wait for the
	// counts rather than for a fixed time.
	failures, already := 0, 0
	counted := func() bool {
		failures, already = 0, 0
		for _, b := range h.mailBatches() {
			failures += b.failures
			already += b.stats.AlreadySent
		}
		return failures > 0 && already > 0
	}
	deadline := time.Now().Add(30 * time.Second)
	for !counted() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if failures == 0 || already == 0 {
		t.Errorf("expected reported failures (%d) and re-deliveries skipped by markers (%d); batches: %+v", failures, already, h.mailBatches())
	}
	time.Sleep(500 * time.Millisecond) // a retry still in flight would show as a second mail
	for addr, c := range countTo(testenv.Emails(t, ""), want) {
		if c != 1 {
			t.Errorf("%s got %d mails", addr, c)
		}
	}
}

// 1,000 invitations in one bulk request: how many SendBulkEmail calls, and how long until the
// last mail is in the emulator.
func TestMailThousandInvitations(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	rate := 1000.0 // the limiter out of the way: this measures the pipeline
	if v, err := strconv.ParseFloat(os.Getenv("ROLLCALL_E2E_MAIL_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	h := newHarness(t, options{instrument: true, mailRate: rate})
	h.putCourse(course, "Big course")
	const n = 1000
	a := addresses("bulk", n)
	start := time.Now()
	h.bulk("enroll", course, a, true, false)
	enrolled := time.Since(start)
	want := set(a)
	waitFor(t, 120*time.Second, "1,000 mails", func() bool {
		return len(countTo(testenv.Emails(t, ""), want)) == n
	})
	drained := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	for addr, c := range countTo(testenv.Emails(t, ""), want) {
		if c != 1 {
			t.Errorf("%s got %d mails", addr, c)
		}
	}
	calls := h.sender.Calls()
	if calls > n/ses.MaxDestinations*2 {
		t.Errorf("%d SendBulkEmail calls for %d mails", calls, n)
	}
	msg := "invitations=1000 bulk_enroll=%v mail_drained_after=%v (since the request) send_bulk_email_calls=%d destinations=%d mailer_invocations=%d send_rate=%v/s"
	t.Logf(msg, enrolled.Round(time.Millisecond), drained.Round(time.Millisecond), calls, h.sender.Messages(), len(h.mailBatches()), rate)
	if path := os.Getenv("ROLLCALL_MAIL_REPORT"); path != "" {
		report := fmt.Sprintf("invitations=%d\nbulk_enroll_ms=%d\nmail_drained_ms=%d\nsend_bulk_email_calls=%d\nmailer_invocations=%d\nsend_rate=%v\n",
			n, enrolled.Milliseconds(), drained.Milliseconds(), calls, len(h.mailBatches()), rate)
		_ = os.WriteFile(path, []byte(report), 0o644)
	}
}
