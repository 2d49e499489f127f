package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
)

var (
	now    = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	secret = []byte("stream-test-secret-0123456789")
	course = "course-v1:Org+Num+Run"
)

// toEvent is the reverse of Attr: what Lambda's event source puts in a record.
func toEvent(t *testing.T, v types.AttributeValue) events.DynamoDBAttributeValue {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(x.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(x.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(x.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(x.Value))
		for i, e := range x.Value {
			l[i] = toEvent(t, e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(toImage(t, x.Value))
	}
	t.Fatalf("unexpected %T", v)
	return events.DynamoDBAttributeValue{}
}

func toImage(t *testing.T, it map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if it == nil {
		return nil
	}
	out := map[string]events.DynamoDBAttributeValue{}
	for k, v := range it {
		out[k] = toEvent(t, v)
	}
	return out
}

// record is the stream record of a write from old to new (either may be nil), passed through
// JSON as Lambda delivers it.
func record(t *testing.T, seq int, old, new *rollcall.Enrollment) events.DynamoDBEventRecord {
	t.Helper()
	r := events.DynamoDBEventRecord{EventName: "MODIFY", EventSource: "aws:dynamodb"}
	r.Change.SequenceNumber = fmt.Sprintf("%021d", seq)
	var id string
	if old != nil {
		r.Change.OldImage = toImage(t, dynamo.EncodeEnrollment(old))
		id = old.ID
	} else {
		r.EventName = "INSERT"
	}
	if new != nil {
		r.Change.NewImage = toImage(t, dynamo.EncodeEnrollment(new))
		id = new.ID
	} else {
		r.EventName = "REMOVE"
	}
	pk, sk := dynamo.EnrollmentKey(id)
	r.Change.Keys = map[string]events.DynamoDBAttributeValue{"PK": events.NewStringAttribute(pk), "SK": events.NewStringAttribute(sk)}
	return r
}

func roundTrip(t *testing.T, ev events.DynamoDBEvent) events.DynamoDBEvent {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out events.DynamoDBEvent
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func invite(t *testing.T, email string, mail bool) *rollcall.Enrollment {
	t.Helper()
	e, ok := rollcall.Enroll(nil, course, email, nil, rollcall.Edit{Actor: "staff", Source: rollcall.SourceBulk, Now: now, EmailOwed: mail})
	if !ok {
		t.Fatal("no invitation")
	}
	e.TokenHash = rollcall.TokenHash(rollcall.InvitationToken(secret, e.ID, e.TokenNonce))
	return e
}

func TestChangesDecodeWhatWasEncoded(t *testing.T) {
	e := invite(t, "a@example.com", true)
	e.Cohort = "blue"
	user := map[string]events.DynamoDBAttributeValue{"PK": events.NewStringAttribute("U#a"), "SK": events.NewStringAttribute("USER")}
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, 1, nil, e),
		{Change: events.DynamoDBStreamRecord{SequenceNumber: "2", Keys: user, NewImage: user}},
	}}
	changes, bad := Changes(roundTrip(t, ev), dynamo.Images{})
	if len(bad) != 0 || len(changes) != 1 {
		t.Fatalf("changes = %+v, bad = %v", changes, bad)
	}
	c := changes[0]
	if c.Old != nil || c.Seq != fmt.Sprintf("%021d", 1) {
		t.Fatalf("change = %+v", c)
	}
	want := *e
	want.CreatedAt, want.UpdatedAt, want.ExpiresAt = want.CreatedAt.UTC(), want.UpdatedAt.UTC(), want.ExpiresAt.UTC()
	got := *c.New
	if !reflect.DeepEqual(got.LastChange, want.LastChange) {
		t.Fatalf("change = %+v, want %+v", got.LastChange, want.LastChange)
	}
	got.LastChange, want.LastChange = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestAttrTypes(t *testing.T) {
	in := map[string]events.DynamoDBAttributeValue{
		"s": events.NewStringAttribute("x"), "n": events.NewNumberAttribute("12"), "b": events.NewBinaryAttribute([]byte{1, 2}),
		"t": events.NewBooleanAttribute(true), "z": events.NewNullAttribute(), "ss": events.NewStringSetAttribute([]string{"a", "b"}),
		"ns": events.NewNumberSetAttribute([]string{"1"}), "bs": events.NewBinarySetAttribute([][]byte{{3}}),
		"l": events.NewListAttribute([]events.DynamoDBAttributeValue{events.NewStringAttribute("y")}),
		"m": events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{"k": events.NewNumberAttribute("1")}),
	}
	out, err := Item(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]types.AttributeValue{
		"s": &types.AttributeValueMemberS{Value: "x"}, "n": &types.AttributeValueMemberN{Value: "12"},
		"b": &types.AttributeValueMemberB{Value: []byte{1, 2}}, "t": &types.AttributeValueMemberBOOL{Value: true},
		"z": &types.AttributeValueMemberNULL{Value: true}, "ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{3}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "y"}}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberN{Value: "1"}}},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %#v", out)
	}
}

// fakeStore is the mailer's and auditor's store in memory.
type fakeStore struct {
	mu       sync.Mutex
	current  map[string]*rollcall.Enrollment
	courses  map[string]*rollcall.Course
	sent     map[dynamo.MailRef]string
	audit    []*rollcall.AuditEntry
	failRead bool
	cleared  []dynamo.MailRef
}

func (f *fakeStore) ClearMailOwed(_ context.Context, refs []dynamo.MailRef) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleared = append(f.cleared, refs...)
	return len(refs), nil
}

func (f *fakeStore) GetEnrollments(_ context.Context, ids []string) (map[string]*rollcall.Enrollment, error) {
	out := map[string]*rollcall.Enrollment{}
	for _, id := range ids {
		if e := f.current[id]; e != nil {
			out[id] = e
		}
	}
	return out, nil
}

func (f *fakeStore) GetCourses(_ context.Context, ids []string) (map[string]*rollcall.Course, error) {
	return f.courses, nil
}

func (f *fakeStore) MailSent(_ context.Context, refs []dynamo.MailRef) (map[dynamo.MailRef]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRead {
		return nil, errors.New("store is down")
	}
	out := map[dynamo.MailRef]bool{}
	for _, r := range refs {
		if _, ok := f.sent[r]; ok {
			out[r] = true
		}
	}
	return out, nil
}

func (f *fakeStore) MarkMailSent(_ context.Context, refs []dynamo.MailRef, outcome map[dynamo.MailRef]string, _ time.Time) (map[dynamo.MailRef]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		f.sent[r] = outcome[r]
	}
	return nil, nil
}

func (f *fakeStore) WriteAuditEntries(_ context.Context, es []*rollcall.AuditEntry) (map[int]error, error) {
	failed := map[int]error{}
	for i, e := range es {
		if e.Email == "fail@example.com" {
			failed[i] = errors.New("throttled")
			continue
		}
		f.audit = append(f.audit, e)
	}
	return failed, nil
}

// fakeSender records what it sends and fails the addresses in fail.
type fakeSender struct {
	calls []string // kind: to, to, ...
	data  []map[string]string
	fail  map[string]ses.Outcome
}

func (s *fakeSender) Send(_ context.Context, kind string, msgs []ses.Message) []ses.Result {
	var to []string
	out := make([]ses.Result, len(msgs))
	for i, m := range msgs {
		to = append(to, m.To)
		s.data = append(s.data, m.Data)
		if o, ok := s.fail[m.To]; ok {
			out[i] = ses.Result{Outcome: o, Status: "FAILED"}
		} else {
			out[i] = ses.Result{Outcome: ses.Sent, MessageID: "m-" + m.To}
		}
	}
	s.calls = append(s.calls, kind+": "+strings.Join(to, ","))
	return out
}

func newMailer(st *fakeStore, s *fakeSender) *Mailer {
	return &Mailer{Store: st, Sender: s, Keys: rollcall.NewKeyRing(secret), BaseURL: "https://rollcall.example/", Now: func() time.Time { return now }, Items: dynamo.Images{}}
}

func TestMailerSendsOwedMailOnce(t *testing.T) {
	a := invite(t, "a@example.com", true)
	b := invite(t, "b@example.com", true)
	quiet := invite(t, "quiet@example.com", false)
	// c: enrolled, then unenrolled in the same batch (in order, two waves).
	user := &rollcall.User{Username: "cee", Email: "c@example.com"}
	c1, _ := rollcall.Enroll(nil, course, "c@example.com", user, rollcall.Edit{Actor: "staff", Source: rollcall.SourceBulk, Now: now, EmailOwed: true})
	c2, _ := rollcall.Unenroll(c1, rollcall.Edit{Actor: "staff", Source: rollcall.SourceBulk, Now: now, EmailOwed: true})
	// b's invitation was re-issued later: its first mail is stale.
	bNow := *b
	bNow.TokenNonce = "another-nonce"
	st := &fakeStore{
		current: map[string]*rollcall.Enrollment{a.ID: a, b.ID: &bNow, quiet.ID: quiet},
		courses: map[string]*rollcall.Course{course: {ID: course, Title: "Go <101>"}},
		sent:    map[dynamo.MailRef]string{},
	}
	s := &fakeSender{}
	m := newMailer(st, s)
	ev := roundTrip(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, 1, nil, a), record(t, 2, nil, b), record(t, 3, nil, quiet), record(t, 4, nil, c1), record(t, 5, c1, c2),
		record(t, 6, a, a), // re-written without new mail
	}})
	resp, stats := m.Process(context.Background(), ev)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures = %v", resp.BatchItemFailures)
	}
	want := []string{"invited: a@example.com", "enrolled: c@example.com", "unenrolled: c@example.com"}
	if !reflect.DeepEqual(s.calls, want) {
		t.Fatalf("calls = %q, want %q", s.calls, want)
	}
	if stats.Sent != 3 || stats.Stale != 1 || stats.Owed != 4 {
		t.Fatalf("stats = %s", stats)
	}
	d := s.data[0]
	token := rollcall.InvitationToken(secret, a.ID, a.TokenNonce)
	wantData := map[string]string{"name": "a", "course_title": "Go <101>", "course_id": course,
		"invitation_url": "https://rollcall.example/invitations/" + token, "expires_at": "7 December 2026, 09:00 UTC",
		"name_html": "a", "course_title_html": "Go &lt;101&gt;", "course_id_html": course}
	if !reflect.DeepEqual(d, wantData) {
		t.Fatalf("data = %v, want %v", d, wantData)
	}
	if rollcall.TokenHash(token) != a.TokenHash {
		t.Fatalf("the mailed token does not match the stored hash")
	}
	if s.data[1]["name"] != "cee" || s.data[1]["invitation_url"] != "" {
		t.Fatalf("enrolled data = %v", s.data[1])
	}

	// Delivered again (a retry): nobody is mailed twice.
	s.calls = nil
	resp, stats = m.Process(context.Background(), ev)
	if len(s.calls) != 0 || len(resp.BatchItemFailures) != 0 || stats.AlreadySent != 3 {
		t.Fatalf("re-delivery sent %q (%s)", s.calls, stats)
	}
}

func TestMailerReportsOnlyFailedRecords(t *testing.T) {
	var recs []events.DynamoDBEventRecord
	cur := map[string]*rollcall.Enrollment{}
	for i := range 120 {
		e := invite(t, fmt.Sprintf("p%03d@example.com", i), true)
		cur[e.ID] = e
		recs = append(recs, record(t, i+1, nil, e))
	}
	st := &fakeStore{current: cur, courses: map[string]*rollcall.Course{}, sent: map[dynamo.MailRef]string{}}
	s := &fakeSender{fail: map[string]ses.Outcome{"p007@example.com": ses.Retry, "p100@example.com": ses.Rejected}}
	m := newMailer(st, s)
	ev := roundTrip(t, events.DynamoDBEvent{Records: recs})
	resp, stats := m.Process(context.Background(), ev)
	if len(s.calls) != 3 {
		t.Errorf("%d SendBulkEmail calls for 120 mails, want 3", len(s.calls))
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != fmt.Sprintf("%021d", 8) {
		t.Fatalf("failures = %v", resp.BatchItemFailures)
	}
	if stats.Sent != 118 || stats.Rejected != 1 || stats.Failed != 1 {
		t.Fatalf("stats = %s", stats)
	}
	// The store is down: every owed record fails.
	st.failRead = true
	resp, _ = m.Process(context.Background(), ev)
	if len(resp.BatchItemFailures) != 120 {
		t.Fatalf("%d failures with the store down", len(resp.BatchItemFailures))
	}
	// A response Lambda can read: an empty list, not null, when nothing failed.
	b, _ := json.Marshal(failures(ev, nil))
	if string(b) != `{"batchItemFailures":[]}` {
		t.Fatalf("response = %s", b)
	}
}

func TestAuditorWritesEntriesAndReportsFailures(t *testing.T) {
	a := invite(t, "a@example.com", false)
	f := invite(t, "fail@example.com", false)
	acc, _ := rollcall.Accept(a, &rollcall.User{Username: "a", Email: "a@example.com"}, rollcall.Edit{Actor: "a", Source: rollcall.SourceInvitation, Now: now})
	st := &fakeStore{}
	au := &Auditor{Store: st, Items: dynamo.Images{}}
	ev := roundTrip(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, 1, nil, a), record(t, 2, a, acc), record(t, 3, nil, f), record(t, 4, acc, acc), record(t, 5, acc, nil),
	}})
	resp, err := au.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != fmt.Sprintf("%021d", 3) {
		t.Fatalf("failures = %v", resp.BatchItemFailures)
	}
	var got []string
	for _, e := range st.audit {
		got = append(got, fmt.Sprintf("%s %s->%s v%d %s", e.Email, e.StateBefore, e.StateAfter, e.Version, e.Transition))
	}
	sort.Strings(got)
	want := []string{
		"a@example.com ->invited v1 " + rollcall.UnenrolledToAllowed,
		"a@example.com invited->active v2 " + rollcall.AllowedToEnrolled,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries = %q, want %q", got, want)
	}
}

func TestHumanTime(t *testing.T) {
	if got := HumanTime(time.Date(2027, 1, 2, 15, 4, 0, 0, time.FixedZone("x", 3600))); got != "2 January 2027, 14:04 UTC" {
		t.Fatalf("HumanTime = %q", got)
	}
}
