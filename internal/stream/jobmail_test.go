package stream

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
)

// fakeJobs is the jobs' side of the store in memory.
type fakeJobs struct {
	jobs   map[string]*rollcall.Job
	marked []string
}

func (f *fakeJobs) GetJob(_ context.Context, id string) (*rollcall.Job, error) {
	if j := f.jobs[id]; j != nil {
		c := *j
		return &c, nil
	}
	return nil, nil
}

func (f *fakeJobs) MarkJobMailed(_ context.Context, id string) error {
	f.marked = append(f.marked, id)
	if j := f.jobs[id]; j != nil {
		j.Mailed = true
	}
	return nil
}

type prefsOf map[string]rollcall.MailPreferences

func (p prefsOf) MailPreferences(_ context.Context, users []string) (map[string]rollcall.MailPreferences, error) {
	if users[0] == "broken" {
		return nil, errors.New("table down")
	}
	return p, nil
}

// jobRecord is the stream record of a write of a job item, as Lambda delivers it.
func jobRecord(t *testing.T, seq int, j *rollcall.Job) events.DynamoDBEventRecord {
	t.Helper()
	it := map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: dynamo.JobPK(j.ID)}, "SK": &types.AttributeValueMemberS{Value: "JOB"},
		"id": &types.AttributeValueMemberS{Value: j.ID}, "state": &types.AttributeValueMemberS{Value: j.State},
		"created_by":    &types.AttributeValueMemberS{Value: j.CreatedBy},
		"creator_email": &types.AttributeValueMemberS{Value: j.CreatorEm},
		"mailed":        &types.AttributeValueMemberBOOL{Value: j.Mailed},
		"total":         &types.AttributeValueMemberN{Value: fmt.Sprint(j.Counts.Total)},
		"changed":       &types.AttributeValueMemberN{Value: fmt.Sprint(j.Counts.Changed)},
	}
	r := events.DynamoDBEventRecord{EventName: "MODIFY", EventSource: "aws:dynamodb"}
	r.Change.SequenceNumber = fmt.Sprintf("%021d", seq)
	r.Change.Keys = map[string]events.DynamoDBAttributeValue{"PK": toEvent(t, it["PK"]), "SK": toEvent(t, it["SK"])}
	r.Change.NewImage = toImage(t, it)
	return r
}

func newJob(who, state string) *rollcall.Job {
	return &rollcall.Job{ID: rollcall.NewJobID(), State: state, CreatedBy: who, CreatorEm: who + "@example.com",
		Counts: rollcall.JobCounts{Total: 3, Changed: 2}}
}

// A finished job's record mails its creator once, in their pref-lang (English when they set
// none or it cannot be read); a redelivered batch, and the record of the `mailed` flag's own
// write, mail nobody again; running and cancelled jobs owe nothing.
func TestMailerSendsJobFinishedOnceInTheCreatorsLanguage(t *testing.T) {
	marie, bob, broken := newJob("Marie", rollcall.JobSucceeded), newJob("bob", rollcall.JobPartiallySucceeded), newJob("broken", rollcall.JobSucceeded)
	running, cancelled := newJob("run", rollcall.JobRunning), newJob("cancel", rollcall.JobCancelled)
	jobs := &fakeJobs{jobs: map[string]*rollcall.Job{}}
	for _, j := range []*rollcall.Job{marie, bob, broken, running, cancelled} {
		jobs.jobs[j.ID] = j
	}
	s := &fakeSender{}
	m := newMailer(&fakeStore{sent: map[dynamo.MailRef]string{}}, s)
	m.Jobs = jobs
	m.Prefs = prefsOf{"marie": {Lang: "fr-ca"}}
	ev := roundTrip(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		jobRecord(t, 1, running), jobRecord(t, 2, marie), jobRecord(t, 3, bob), jobRecord(t, 4, broken),
		jobRecord(t, 5, cancelled), jobRecord(t, 6, marie), // the same write delivered twice in one batch
	}})
	resp, st := m.Process(context.Background(), ev)
	want := []string{"job_finished-fr: Marie@example.com", "job_finished: bob@example.com", "job_finished: broken@example.com"}
	if len(resp.BatchItemFailures) != 0 || !reflect.DeepEqual(s.calls, want) || st.Sent != 3 || st.Owed != 3 {
		t.Fatalf("calls %q, failures %v, stats %s", s.calls, resp.BatchItemFailures, st)
	}
	if d := s.data[0]; d["results_url"] != "https://rollcall.example"+rollcall.JobsPath+"/"+marie.ID+"/results" ||
		d["state"] != "succeeded" || d["total"] != "3" || d["changed"] != "2" || d["name_html"] != "Marie" {
		t.Fatalf("data %v", d)
	}
	if len(jobs.marked) != 3 {
		t.Fatalf("marked %v", jobs.marked)
	}

	// Redelivered (a retried batch), and the records of the flag's writes: nothing more.
	s.calls = nil
	marieMailed := *marie
	marieMailed.Mailed = true
	ev.Records = append(ev.Records, jobRecord(t, 7, &marieMailed))
	resp, st = m.Process(context.Background(), roundTrip(t, ev))
	if len(s.calls) != 0 || len(resp.BatchItemFailures) != 0 || st.AlreadySent != 3 {
		t.Fatalf("redelivery sent %q (%s)", s.calls, st)
	}
}

// A job mail that may pass later fails its records (every delivery of it in the batch), and
// the stream's retry sends it; a rejected one counts as mailed.
func TestMailerRetriesJobMailThatFailed(t *testing.T) {
	down, bad := newJob("down", rollcall.JobSucceeded), newJob("bad", rollcall.JobSucceeded)
	jobs := &fakeJobs{jobs: map[string]*rollcall.Job{down.ID: down, bad.ID: bad}}
	s := &fakeSender{fail: map[string]ses.Outcome{"down@example.com": ses.Retry, "bad@example.com": ses.Rejected}}
	m := newMailer(&fakeStore{sent: map[dynamo.MailRef]string{}}, s)
	m.Jobs = jobs
	ev := roundTrip(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{jobRecord(t, 1, down), jobRecord(t, 2, bad), jobRecord(t, 3, down)}})
	resp, st := m.Process(context.Background(), ev)
	if len(resp.BatchItemFailures) != 2 || resp.BatchItemFailures[0].ItemIdentifier != fmt.Sprintf("%021d", 1) ||
		resp.BatchItemFailures[1].ItemIdentifier != fmt.Sprintf("%021d", 3) || st.Failed != 1 || st.Rejected != 1 {
		t.Fatalf("failures %v, stats %s", resp.BatchItemFailures, st)
	}
	if !reflect.DeepEqual(jobs.marked, []string{bad.ID}) {
		t.Fatalf("marked %v", jobs.marked)
	}
	delete(s.fail, "down@example.com") // SES is back: the retry sends it
	s.calls = nil
	resp, st = m.Process(context.Background(), ev)
	if len(resp.BatchItemFailures) != 0 || st.Sent != 1 || !reflect.DeepEqual(s.calls, []string{"job_finished: down@example.com"}) {
		t.Fatalf("retry: calls %q, failures %v, stats %s", s.calls, resp.BatchItemFailures, st)
	}
}
