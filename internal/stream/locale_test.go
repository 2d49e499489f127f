package stream

import (
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

func TestMailLanguage(t *testing.T) {
	for pref, want := range map[string]string{"": "", "en": "", "es": "es", "es-419": "es", "ES_mx": "es", "fr": "fr", "fr-CA": "fr",
		"pt": "pt-br", "pt-BR": "pt-br", "pt_PT": "pt-br", "de": "", "e": "", "est": ""} {
		if got := MailLanguage(pref); got != want {
			t.Errorf("MailLanguage(%q) = %q, want %q", pref, got, want)
		}
	}
	if TemplateKind(rollcall.MailInvited, "") != "invited" || TemplateKind(rollcall.MailInvited, "pt-br") != "invited-pt-br" {
		t.Error("TemplateKind")
	}
}

func TestHumanTimeIn(t *testing.T) {
	at := time.Date(2027, 8, 2, 15, 4, 0, 0, time.UTC)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lang string
		loc  *time.Location
		want string
	}{
		{"", nil, "2 August 2027, 15:04 UTC"},
		{"", tokyo, "3 August 2027, 00:04 (Asia/Tokyo)"},
		{"es", nil, "2 de agosto de 2027, 15:04 (UTC)"},
		{"fr", tokyo, "3 août 2027, 00:04 (Asia/Tokyo)"},
		{"pt-br", nil, "2 de agosto de 2027, 15:04 (UTC)"},
	} {
		if got := HumanTimeIn(at, c.lang, c.loc); got != c.want {
			t.Errorf("HumanTimeIn(%q, %v) = %q, want %q", c.lang, c.loc, got, c.want)
		}
	}
	if HumanTimeIn(time.Time{}, "fr", tokyo) != "" {
		t.Error("zero time")
	}
}
