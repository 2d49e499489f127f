package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
)

// The mailer takes every mail it dealt with (sent, stale, already sent, rejected) out of the
// owed-mail index, leaves the failed ones there for the sweep, and writes one EMF line.
func TestMailerClearsWhatItDealtWithAndEmitsMetrics(t *testing.T) {
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
	var metrics bytes.Buffer
	m.Metrics = &metrics
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
	if !cleared[sent.ID] || !cleared[rejected.ID] || cleared[failed.ID] || len(st.cleared) != 2 {
		t.Fatalf("cleared %v", st.cleared)
	}

	var line struct {
		Aws struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function                           string
		MailSent, MailFailed, MailRejected int
	}
	if err := json.Unmarshal(metrics.Bytes(), &line); err != nil {
		t.Fatalf("metrics %q: %v", metrics.String(), err)
	}
	cw := line.Aws.CloudWatchMetrics
	if line.Function != "MailerFunction" || line.MailSent != 1 || line.MailFailed != 1 || line.MailRejected != 1 ||
		line.Aws.Timestamp == 0 || len(cw) != 1 || cw[0].Namespace != "rollcall" || len(cw[0].Metrics) != 3 ||
		len(cw[0].Dimensions) != 1 || cw[0].Dimensions[0][0] != "Function" {
		t.Fatalf("metrics line %s", metrics.String())
	}

	// Redelivered: already sent, so cleared again (idempotent), nothing sent.
	st.cleared = nil
	s.fail = nil
	_, stats = m.Process(context.Background(), ev)
	if stats.AlreadySent != 2 || stats.Sent != 1 || len(st.cleared) != 3 {
		t.Fatalf("redelivery: %s, cleared %v", stats, st.cleared)
	}
}
