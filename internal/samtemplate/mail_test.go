package samtemplate

import (
	"strconv"
	"testing"
	"time"
)

// Both stream consumers give up in bounded time, to the dead-letter queue; the sweep runs on a
// schedule and waits longer than the stream can still deliver a record.
func TestRepoTemplateStreamDeadLettersAndSweep(t *testing.T) {
	tpl := loadRepoTemplate(t)
	var mailerAge, mailerTimeout time.Duration
	for _, id := range []string{"MailerFunction", "AuditFunction"} {
		f, _ := tpl.Function(id)
		if len(f.Streams) != 1 {
			t.Fatalf("%s streams = %+v", id, f.Streams)
		}
		s := f.Streams[0]
		if s.MaximumRecordAge <= 0 || s.MaximumRetryAttempts < 0 || s.OnFailureResource != "StreamDeadLetterQueue" {
			t.Errorf("%s: record age %v, retries %d, on failure %q", id, s.MaximumRecordAge, s.MaximumRetryAttempts, s.OnFailureResource)
		}
		if id == "MailerFunction" {
			mailerAge, mailerTimeout = s.MaximumRecordAge, f.Timeout
		}
	}
	if _, ok := tpl.Resources["StreamDeadLetterQueue"]; !ok {
		t.Error("no StreamDeadLetterQueue")
	}

	sweep, ok := tpl.Function("MailSweepFunction")
	if !ok || len(sweep.Schedules) != 1 || sweep.Schedules[0].Rate == 0 || !sweep.Schedules[0].Enabled {
		t.Fatalf("MailSweepFunction schedule: %+v", sweep)
	}
	env, _, err := tpl.FunctionEnv(sweep, map[string]string{"Table": "t", "HttpApi": "api"})
	if err != nil {
		t.Fatal(err)
	}
	after, err := strconv.Atoi(env["MAIL_SWEEP_AFTER_SECONDS"])
	if err != nil {
		t.Fatalf("MAIL_SWEEP_AFTER_SECONDS %q", env["MAIL_SWEEP_AFTER_SECONDS"])
	}
	// The sweep must never meet a record the stream may still deliver: one just young enough
	// runs for up to the mailer's timeout after it was read.
	if min := mailerAge + mailerTimeout; time.Duration(after)*time.Second < min+5*time.Minute {
		t.Errorf("sweep after %ds: want at least the record age %v + mailer timeout %v + a margin", after, mailerAge, mailerTimeout)
	}
	if sweep.Timeout >= sweep.Schedules[0].Rate {
		t.Errorf("sweep timeout %v >= its period %v: runs would overlap", sweep.Timeout, sweep.Schedules[0].Rate)
	}
}

// The IAM condition ses:FromAddress compares the bare address, so MailFrom may be either
// "address" or "Name <address>"; the template computes the bare address with intrinsics.
func TestRepoTemplateFromAddressCondition(t *testing.T) {
	tpl := loadRepoTemplate(t)
	for _, id := range []string{"MailerFunction", "MailSweepFunction"} {
		r := tpl.Resources[id]
		var cond any
		for _, pol := range asList(r.Properties["Policies"]) {
			for _, st := range asList(asMap(pol)["Statement"]) {
				if c, ok := asMap(asMap(asMap(st)["Condition"])["StringEquals"])["ses:FromAddress"]; ok {
					cond = c
				}
			}
		}
		if cond == nil {
			t.Fatalf("%s: no ses:FromAddress condition", id)
		}
		for from, want := range map[string]string{
			"no-reply@example.org":                  "no-reply@example.org",
			"Rollcall <no-reply@example.org>":       "no-reply@example.org",
			"\"Rollcall, Inc\" <mail@rollcall.dev>": "mail@rollcall.dev",
		} {
			got, err := tpl.ResolveString(cond, map[string]string{"MailFrom": from})
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if got != want {
				t.Errorf("%s: MailFrom %q: condition %q, want %q", id, from, got, want)
			}
		}
	}
}

func TestSplit(t *testing.T) {
	tpl := loadRepoTemplate(t)
	got, err := tpl.Resolve(map[string]any{"Fn::Split": []any{",", "a,b,,c"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := asList(got)
	if len(l) != 4 || l[0] != "a" || l[2] != "" || l[3] != "c" {
		t.Errorf("split = %#v", got)
	}
	if _, err := tpl.Resolve(map[string]any{"Fn::Split": []any{"", "a"}}, nil); err == nil {
		t.Error("empty delimiter accepted")
	}
}
