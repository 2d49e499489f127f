// Package mail builds the functions that send mail: MailerFunction (from the table's stream)
// and MailSweepFunction (scheduled, for mail the stream gave up on). Only their binaries link
// SES.
package mail

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // dates in mail are in the learner's time zone; Lambda's OS may have no zoneinfo

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/keys"
	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/stream"
)

// MailerFunction builds the stream function that sends invitation and enrollment mail, and
// the job_finished mail of roster jobs the job worker finished.
func MailerFunction(ctx context.Context, c app.Config) (any, error) {
	d, err := app.Build(ctx, c)
	if err != nil {
		return nil, err
	}
	m, err := NewMailer(ctx, d)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return m.Handle(ctx, ev)
	}, nil
}

// NewMailer builds the MailerFunction's worker: SES v2 (the emulator locally) paced at
// MailSendRate, invitation links under PublicBaseURL.
func NewMailer(ctx context.Context, d *app.Deps) (*stream.Mailer, error) {
	base, err := d.Config.LinkBase("the mailer")
	if err != nil {
		return nil, err
	}
	if _, err := ses.BareAddress(d.Config.MailFrom); err != nil {
		return nil, fmt.Errorf("config: MAIL_FROM: want an address or \"Name <address>\": %w", err)
	}
	// One send rate for every mailer instance (concurrent stream invocations and the sweep):
	// a counter per second in the table.
	budget := &dynamo.SendRate{Store: d.Store, Rate: max(1, int(d.Config.MailSendRate))}
	sender := &ses.Sender{Client: sesClient(d), From: d.Config.MailFrom, TemplatePrefix: d.Config.MailTemplatePrefix,
		ConfigurationSet: os.Getenv("MAIL_CONFIGURATION_SET"), Limiter: budget}
	ring, err := keys.Signing(ctx, d)
	if err != nil {
		return nil, err
	}
	return &stream.Mailer{Store: d.Store, Sender: sender, Keys: ring,
		BaseURL: base, Log: d.Log, Now: d.Config.Now, Metrics: app.EMF("MailerFunction"), Items: dynamo.Images{},
		Prefs: d.Store, Jobs: d.Store}, nil
}

// sesClient is the SES v2 client (the emulator's endpoint locally), checked by the function's
// authorization hook as the SDK's calls are.
func sesClient(d *app.Deps) *ses.Client {
	return ses.NewClient(d.AWS, d.Config.SESEndpoint, d.Config.Authorize)
}
