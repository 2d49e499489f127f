package ses_test

import (
	"context"
	"testing"

	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The local emulator accepts what the deployed sender sends: a configuration set, message tags
// and a "Name <address>" From.
func TestEmulatorAcceptsConfigurationSetAndNamedFrom(t *testing.T) {
	testenv.Start(t)
	to := testenv.Address("confset")
	s := &ses.Sender{Client: testenv.SESClient(t), From: "Rollcall <no-reply@rollcall.test>", TemplatePrefix: testenv.MailTemplatePrefix,
		ConfigurationSet: "rollcall-test"}
	res := s.Send(context.Background(), "enrolled", []ses.Message{{To: to, Data: map[string]string{
		"name": "n", "course_title": "T", "course_id": "c", "invitation_url": "", "expires_at": "",
		"name_html": "n", "course_title_html": "T", "course_id_html": "c"}}})
	if res[0].Outcome != ses.Sent {
		t.Fatalf("result %+v", res[0])
	}
	got := testenv.Emails(t, to)
	if len(got) != 1 {
		t.Fatalf("%d mails", len(got))
	}
	t.Logf("from %q", got[0].From)
}
