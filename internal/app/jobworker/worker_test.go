package jobworker

import (
	"context"
	"errors"
	"testing"

	"github.com/rollcall/rollcall/internal/rollcall"
)

type sentKinds []string

func (s *sentKinds) Send(_ context.Context, kind string, msgs []rollcall.MailMessage) []rollcall.MailResult {
	*s = append(*s, kind)
	return make([]rollcall.MailResult, len(msgs))
}

// job_finished goes out in the creator's pref-lang, as learners' mail does; English when the
// creator set none or the preferences cannot be read.
func TestJobFinishedInTheCreatorsLanguage(t *testing.T) {
	var sent sentKinds
	prefs := map[string]rollcall.MailPreferences{"marie": {Lang: "fr-ca"}}
	m := &jobMail{sender: &sent, baseURL: "http://x", prefs: func(_ context.Context, users []string) (map[string]rollcall.MailPreferences, error) {
		if users[0] == "broken" {
			return nil, errors.New("table down")
		}
		return prefs, nil
	}}
	for _, who := range []string{"Marie", "bob", "broken"} {
		if err := m.JobFinished(context.Background(), &rollcall.Job{ID: "j", CreatedBy: who, CreatorEm: who + "@x.org"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(sent) != 3 || sent[0] != "job_finished-fr" || sent[1] != "job_finished" || sent[2] != "job_finished" {
		t.Fatalf("kinds %v", sent)
	}
}
