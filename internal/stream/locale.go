package stream

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Localized mail (docs/api.md#preferences). Every template exists in English
// (rollcall-<stage>-<kind>) and in Spanish, French and Brazilian Portuguese
// (rollcall-<stage>-<kind>-es, -fr, -pt-br). A registered learner's pref-lang picks one; anyone
// else, or another language, gets English. Their time_zone is the zone of dates in the mail:
// the mail functions' binaries embed the zone database (internal/app/mail), since Lambda's OS
// may have none; every other function links this package (through the audit function's
// builder) and does not need it.

// MailPreferenceReader reads learners' mail preferences in batches (the store).
type MailPreferenceReader interface {
	MailPreferences(ctx context.Context, usernames []string) (map[string]rollcall.MailPreferences, error)
}

// Mail languages: "" is English.
const (
	LangEnglish    = ""
	LangSpanish    = "es"
	LangFrench     = "fr"
	LangPortuguese = "pt-br"
)

// MailLanguages are the languages every template exists in, English first.
var MailLanguages = []string{LangEnglish, LangSpanish, LangFrench, LangPortuguese}

// MailLanguage maps a pref-lang value to the language of the templates: es*, fr* and pt* have
// their own; everything else is English.
func MailLanguage(pref string) string {
	p := strings.ToLower(strings.TrimSpace(pref))
	base, _, _ := strings.Cut(strings.ReplaceAll(p, "_", "-"), "-")
	switch base {
	case "es":
		return LangSpanish
	case "fr":
		return LangFrench
	case "pt":
		return LangPortuguese
	}
	return LangEnglish
}

// TemplateKind is the template name suffix of a kind in a language ("invited", "invited-fr").
func TemplateKind(kind rollcall.MailKind, lang string) string {
	if lang == LangEnglish {
		return string(kind)
	}
	return string(kind) + "-" + lang
}

var months = map[string][12]string{
	LangSpanish:    {"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
	LangFrench:     {"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
	LangPortuguese: {"janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro"},
}

// HumanTimeIn is how mail in lang shows a time in loc (nil: UTC): "7 December 2026, 09:00 UTC",
// "7 de diciembre de 2026, 10:00 (Europe/Madrid)", "7 décembre 2026, 10:00 (Europe/Paris)",
// "7 de dezembro de 2026, 06:00 (America/Sao_Paulo)".
func HumanTimeIn(t time.Time, lang string, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	zone := "UTC"
	if loc != time.UTC {
		zone = loc.String()
	}
	names, ok := months[lang]
	if !ok {
		if zone == "UTC" {
			return HumanTime(t)
		}
		return fmt.Sprintf("%s (%s)", lt.Format("2 January 2006, 15:04"), zone)
	}
	month := names[lt.Month()-1]
	clock := lt.Format("15:04")
	switch lang {
	case LangFrench:
		return fmt.Sprintf("%d %s %d, %s (%s)", lt.Day(), month, lt.Year(), clock, zone)
	default: // Spanish, Portuguese
		return fmt.Sprintf("%d de %s de %d, %s (%s)", lt.Day(), month, lt.Year(), clock, zone)
	}
}

// localize sets the language and time zone of each mail from its learner's preferences, read
// in one batch; mail to someone without an account stays English and UTC.
func (m *Mailer) localize(ctx context.Context, todo []owedMail) error {
	if m.Prefs == nil {
		return nil
	}
	var names []string
	for _, o := range todo {
		if o.e.Username != "" {
			names = append(names, o.e.Username)
		}
	}
	if len(names) == 0 {
		return nil
	}
	prefs, err := m.Prefs.MailPreferences(ctx, names)
	if err != nil {
		return err
	}
	for i := range todo {
		p, ok := prefs[rollcall.NormalizeUsername(todo[i].e.Username)]
		if !ok || todo[i].e.Username == "" {
			continue
		}
		todo[i].lang = MailLanguage(p.Lang)
		if p.TimeZone != "" {
			if loc, err := time.LoadLocation(p.TimeZone); err == nil {
				todo[i].loc = loc
			}
		}
	}
	return nil
}
