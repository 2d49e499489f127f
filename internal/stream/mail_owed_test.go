package stream

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
)

// The mailer takes the mail it gave up on (stale, already sent, rejected) out of the owed-mail
// index, leaves what it sent (its marker tells the sweep) and what failed there for the sweep,
// and writes one EMF line.
func TestMailerClearsWhatItGaveUpAndEmitsMetrics(t *testing.T) {
	sent := invite(t, "sent@example.com", true)
	rejected := invite(t, "rejected@example.com", true)
	failed := invite(t, "failed@example.com", true)
	if sent.MailOwedAt.IsZero() {
		t.Fatal("a change that owes mail does not record since when")
	}
	st := &fakeStore{
		current: map[string]*rollcall.Enrollment{sent.ID: sent, rejected.ID: rejected, failed.ID: failed},
		courses: map[string]*rollcall.Course{course: {ID: course, Title: "T"}},
		sent:    map[dynamo.MailRef]string{},
	}
	s := &fakeSender{fail: map[string]ses.Outcome{"rejected@example.com": ses.Rejected, "failed@example.com": ses.Retry}}
	m := newMailer(st, s)
	metrics := &recordedMetrics{}
	m.Metrics = metrics
	ev := roundTrip(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, 1, nil, sent), record(t, 2, nil, rejected), record(t, 3, nil, failed)}})
	resp, stats := m.Process(context.Background(), ev)
	if len(resp.BatchItemFailures) != 1 || stats.Sent != 1 || stats.Rejected != 1 || stats.Failed != 1 {
		t.Fatalf("%v %s", resp.BatchItemFailures, stats)
	}
	cleared := map[string]bool{}
	for _, r := range st.cleared {
		cleared[r.EnrollmentID] = true
	}
	// What went out stays for the sweep to clear (an UpdateItem per mail would double the
	// mailer's time); what was given up leaves at once.
	if cleared[sent.ID] || !cleared[rejected.ID] || cleared[failed.ID] || len(st.cleared) != 1 {
		t.Fatalf("cleared %v", st.cleared)
	}

	if len(metrics.records) != 1 {
		t.Fatalf("%d metric records, want 1 per invocation", len(metrics.records))
	}
	if got := metrics.records[0]; got["MailSent"] != 1 || got["MailFailed"] != 1 || got["MailRejected"] != 1 {
		t.Fatalf("metrics %v", got)
	}

	// Redelivered: the two already dealt with are cleared (nothing sent twice), the failed one
	// is sent and left for the sweep.
	st.cleared = nil
	s.fail = nil
	_, stats = m.Process(context.Background(), ev)
	if stats.AlreadySent != 2 || stats.Sent != 1 || len(st.cleared) != 2 {
		t.Fatalf("redelivery: %s, cleared %v", stats, st.cleared)
	}
}

// recordedMetrics keeps what the mailer records.
type recordedMetrics struct{ records []map[string]float64 }

func (r *recordedMetrics) Record(_ context.Context, counts map[string]float64) {
	r.records = append(r.records, counts)
}
