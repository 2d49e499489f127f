package app_test

// Mail in the learner's language and time zone, through the stream and the SES emulator.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app/mail"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestMailInTheLearnersLanguage(t *testing.T) {
	services := testenv.Start(t)
	_, table := testenv.NewTable(t) // with its stream
	e := withUserAPI(t, newEnvOn(t, services.DynamoDBEndpoint, services.SESEndpoint, table, "BulkEnrollFunction", "AdminFunction"))
	mailer, err := mail.NewMailer(context.Background(), e.deps)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(_ context.Context, id string) (any, error) {
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return mailer.Handle(ctx, ev)
		}, nil
	}
	runStream(t, services, table, lookup, "MailerFunction")

	course, other := "course-v1:Lang+L1+2026", "course-v1:Lang+L2+2026"
	mustStatus(t, e.do("PUT", "/api/courses/"+course, e.staff, map[string]any{"title": "Física & <Química>"}, ""), http.StatusCreated)
	mustStatus(t, e.do("PUT", "/api/courses/"+other, e.staff, map[string]any{"title": "Histoire"}, ""), http.StatusCreated)
	type learner struct {
		name, lang, zone, subject string
		addr                      string
	}
	learners := []*learner{
		{name: "lang_en", subject: "You have been enrolled in Física & <Química>"},
		{name: "lang_es", lang: "es", zone: "Europe/Madrid", subject: "Se ha completado tu inscripción en Física & <Química>"},
		{name: "lang_fr", lang: "fr-CA", zone: "Europe/Paris", subject: "Votre inscription à Física & <Química> est confirmée"},
		{name: "lang_pt", lang: "pt-BR", zone: "America/Sao_Paulo", subject: "Sua matrícula em Física & <Química> foi confirmada"},
		{name: "lang_de", lang: "de", subject: "You have been enrolled in Física & <Química>"}, // no German templates: English
	}
	var idents []string
	for _, l := range learners {
		l.addr = testenv.Address(l.name)
		mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": l.name, "email": l.addr}, ""), http.StatusCreated)
		if l.lang != "" {
			patch := `{"pref-lang": "` + l.lang + `"` + map[bool]string{true: `, "time_zone": "` + l.zone + `"`, false: ""}[l.zone != ""] + `}`
			mustStatus(t, e.do("PATCH", "/api/user/v1/preferences/"+l.name, token(t, l.name, false), patch, "application/merge-patch+json"), http.StatusNoContent)
		}
		idents = append(idents, l.name)
	}
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{
		"identifiers": strings.Join(idents, ","), "action": "enroll", "email_students": true, "courses": course}, ""), http.StatusOK)
	for _, l := range learners {
		got := testenv.WaitForEmails(t, l.addr, 1, 30*time.Second)
		if got[0].Subject != l.subject {
			t.Errorf("%s: subject %q, want %q", l.name, got[0].Subject, l.subject)
		}
		if !strings.Contains(got[0].Body.HTML, "Física &amp; &lt;Química&gt;") {
			t.Errorf("%s: HTML %q", l.name, got[0].Body.HTML)
		}
	}

	// Invitations carry a date: in the learner's zone and language. (The test clock is 23
	// November 2026, 09:00 UTC; invitations last 14 days.)
	wantDate := map[string]string{
		"lang_en": "valid until 7 December 2026, 09:00 UTC",
		"lang_es": "válida hasta el 7 de diciembre de 2026, 10:00 (Europe/Madrid)",
		"lang_fr": "valable jusqu'au 7 décembre 2026, 10:00 (Europe/Paris)",
		"lang_pt": "válido até 7 de dezembro de 2026, 06:00 (America/Sao_Paulo)",
	}
	for _, l := range learners[:4] {
		mustStatus(t, e.do("POST", "/api/courses/"+other+"/enrollments", e.staff, map[string]any{"enrollment": map[string]any{"email": l.addr}}, ""), http.StatusCreated)
		got := testenv.WaitForEmails(t, l.addr, 2, 30*time.Second)
		if !strings.Contains(got[1].Body.Text, wantDate[l.name]) || !strings.Contains(got[1].Body.Text, "/invitations/") {
			t.Errorf("%s: invitation text %q, want %q", l.name, got[1].Body.Text, wantDate[l.name])
		}
	}
}
