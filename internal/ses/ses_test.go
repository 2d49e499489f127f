package ses

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

type fakeAPI struct {
	inputs   []*SendBulkEmailInput
	statuses map[string]string
	err      error
}

func (f *fakeAPI) SendBulkEmail(_ context.Context, in *SendBulkEmailInput) (*SendBulkEmailOutput, error) {
	f.inputs = append(f.inputs, in)
	if f.err != nil {
		return nil, f.err
	}
	out := &SendBulkEmailOutput{}
	for i, e := range in.BulkEmailEntries {
		st := StatusSuccess
		if s, ok := f.statuses[e.Destination.ToAddresses[0]]; ok {
			st = s
		}
		out.BulkEmailEntryResults = append(out.BulkEmailEntryResults, BulkEmailEntryResult{
			Status: st, MessageID: "id-" + string(rune('a'+i%26)), Error: "because"})
	}
	return out, nil
}

func TestSenderChunksAndMapsStatuses(t *testing.T) {
	api := &fakeAPI{statuses: map[string]string{
		"r@x.org": StatusMessageRejected,
		"t@x.org": StatusAccountThrottled,
		"f@x.org": StatusFailed,
	}}
	s := &Sender{Client: api, From: "from@x.org", TemplatePrefix: "rollcall-test-"}
	var msgs []Message
	for i := range 120 {
		to := "m" + string(rune('a'+i%26)) + "@x.org"
		switch i {
		case 3:
			to = "r@x.org"
		case 60:
			to = "t@x.org"
		case 119:
			to = "f@x.org"
		}
		msgs = append(msgs, Message{To: to, Data: map[string]string{"name": "n", "course_title": `<T> "q"`}})
	}
	res := s.Send(context.Background(), "invited", msgs)
	if len(api.inputs) != 3 || len(api.inputs[0].BulkEmailEntries) != 50 || len(api.inputs[2].BulkEmailEntries) != 20 {
		t.Fatalf("%d calls", len(api.inputs))
	}
	in := api.inputs[0]
	if in.FromEmailAddress != "from@x.org" || in.DefaultContent.Template.TemplateName != "rollcall-test-invited" {
		t.Fatalf("input = %+v", in)
	}
	var data map[string]string
	if err := json.Unmarshal([]byte(in.BulkEmailEntries[0].ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData), &data); err != nil || data["course_title"] != `<T> "q"` {
		t.Fatalf("data = %v, %v", data, err)
	}
	if res[3].Outcome != Rejected || res[60].Outcome != Retry || res[119].Outcome != Retry || res[0].Outcome != Sent || res[0].MessageID == "" {
		t.Fatalf("results = %+v %+v %+v %+v", res[3], res[60], res[119], res[0])
	}
	if s.Calls() != 3 || s.Messages() != 117 {
		t.Fatalf("calls %d messages %d", s.Calls(), s.Messages())
	}

	api.err = errors.New("connection refused")
	res = s.Send(context.Background(), "enrolled", msgs[:2])
	if res[0].Outcome != Retry || res[1].Outcome != Retry || res[0].Err == nil {
		t.Fatalf("results on a failed call = %+v", res)
	}
}

func TestLimiterPaces(t *testing.T) {
	l := NewLimiter(200) // 200 messages a second
	ctx := context.Background()
	start := time.Now()
	for range 3 {
		if err := l.Wait(ctx, 20); err != nil { // 100 ms each, the first at once
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 190*time.Millisecond || d > 600*time.Millisecond {
		t.Fatalf("3 x 20 messages at 200/s took %v, want about 200ms", d)
	}
	// A wait that cannot end before the deadline fails at once.
	l = NewLimiter(1)
	_ = l.Wait(ctx, 10)
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(dctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	var none *Limiter
	if err := none.Wait(ctx, 1000); err != nil {
		t.Fatal(err)
	}
}

func TestBareAddress(t *testing.T) {
	for from, want := range map[string]string{
		"no-reply@example.org":                  "no-reply@example.org",
		"Rollcall <no-reply@example.org>":       "no-reply@example.org",
		"\"Rollcall, Inc\" <mail@rollcall.dev>": "mail@rollcall.dev",
		"  <x@y.org>":                           "x@y.org",
	} {
		got, err := BareAddress(from)
		if err != nil || got != want {
			t.Errorf("BareAddress(%q) = %q, %v; want %q", from, got, err, want)
		}
	}
	for _, bad := range []string{"", "Rollcall", "Rollcall <>", "a@b.org, c@d.org"} {
		if got, err := BareAddress(bad); err == nil {
			t.Errorf("BareAddress(%q) = %q, want an error", bad, got)
		}
	}
}

// A call carries at most PerCall destinations, names the
// configuration set and tags the mail kind, and the From value goes to SES whole.
func TestSenderPerCallConfigurationSetAndFrom(t *testing.T) {
	api := &fakeAPI{}
	var waits []int
	s := &Sender{Client: api, From: "Rollcall <from@x.org>", TemplatePrefix: "p-", ConfigurationSet: "rollcall-test",
		PerCall: 10, Limiter: limiterFunc(func(_ context.Context, n int) error { waits = append(waits, n); return nil })}
	msgs := make([]Message, 25)
	for i := range msgs {
		msgs[i] = Message{To: "a@x.org"}
	}
	s.Send(context.Background(), "enrolled", msgs)
	if len(api.inputs) != 3 || len(waits) != 3 || waits[0] != 10 || waits[2] != 5 {
		t.Fatalf("%d calls, waits %v", len(api.inputs), waits)
	}
	in := api.inputs[0]
	if in.ConfigurationSetName != "rollcall-test" || in.FromEmailAddress != "Rollcall <from@x.org>" ||
		len(in.DefaultEmailTags) != 1 || in.DefaultEmailTags[0].Value != "enrolled" {
		t.Fatalf("input = %+v", in)
	}
	s.ConfigurationSet = ""
	s.Send(context.Background(), "enrolled", msgs[:1])
	if in := api.inputs[3]; in.ConfigurationSetName != "" {
		t.Fatalf("configuration set %q named while unset", in.ConfigurationSetName)
	}
}

type limiterFunc func(ctx context.Context, n int) error

func (f limiterFunc) Wait(ctx context.Context, n int) error { return f(ctx, n) }
