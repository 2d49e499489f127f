package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/stream"
)

// Mailer builds the MailerFunction's worker: SES v2 (the emulator locally) paced at
// MailSendRate, invitation links under PublicBaseURL.
func (d *Deps) Mailer(ctx context.Context) (*stream.Mailer, error) {
	base := d.Config.PublicBaseURL
	if base == "" {
		if d.Config.Stage != "local" {
			return nil, fmt.Errorf("config: PUBLIC_BASE_URL is required for the mailer (links in mail)")
		}
		port := os.Getenv("PORT")
		if port == "" {
			port = "3000"
		}
		base = "http://127.0.0.1:" + port
	}
	if _, err := ses.BareAddress(d.Config.MailFrom); err != nil {
		return nil, fmt.Errorf("config: MAIL_FROM: want an address or \"Name <address>\": %w", err)
	}
	// One send rate for every mailer instance (concurrent stream invocations and the sweep):
	// a counter per second in the table.
	budget := &dynamo.SendRate{Store: d.Store, Rate: max(1, int(d.Config.MailSendRate))}
	sender := &ses.Sender{Client: d.SES(), From: d.Config.MailFrom, TemplatePrefix: d.Config.MailTemplatePrefix,
		ConfigurationSet: os.Getenv("MAIL_CONFIGURATION_SET"), Limiter: budget, PerCall: ses.PerCall(d.Config.MailSendRate)}
	keys, err := d.LoadKeys(ctx)
	if err != nil {
		return nil, err
	}
	return &stream.Mailer{Store: d.Store, Sender: sender, Keys: keys,
		BaseURL: strings.TrimRight(base, "/"), Log: d.Log, Now: d.Config.Now, Metrics: emfMetrics{function: "MailerFunction"}, Items: dynamo.Images{},
		Prefs: d.Store}, nil
}

// Auditor builds the AuditFunction's worker.
func (d *Deps) Auditor() *stream.Auditor {
	return &stream.Auditor{Store: d.Store, Log: d.Log, Items: dynamo.Images{}}
}

func init() {
	registry["MailerFunction"] = func(ctx context.Context, c Config) (any, error) {
		d, err := Build(ctx, c)
		if err != nil {
			return nil, err
		}
		m, err := d.Mailer(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return m.Handle(ctx, ev)
		}, nil
	}
	registry["AuditFunction"] = func(ctx context.Context, c Config) (any, error) {
		d, err := Build(ctx, c)
		if err != nil {
			return nil, err
		}
		a := d.Auditor()
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return a.Handle(ctx, ev)
		}, nil
	}
}
