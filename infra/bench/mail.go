package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/mail"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/ses"
)

// mailDrainCase is mail_drain_10000: n invitations are owed in a table whose stream is on,
// then the local stream runner hands the stream to MailerFunction with the event source's
// BatchSize and MaximumBatchingWindowInSeconds from template.yaml, as Lambda would, and the
// mailer sends through the SES emulator at the given send rate. The floors: n/50 SendBulkEmail
// calls (50 destinations a call) and n/rate seconds.
func mailDrainCase(ctx context.Context, ddbEndpoint string, tpl *samtemplate.Template, log *slog.Logger, n int, rate float64) Case {
	dir, err := os.MkdirTemp("", "rollcall-bench-ses-")
	check(err)
	defer os.RemoveAll(dir)
	sesSvc, err := localstack.StartSES(ctx, localstack.SESOptions{DataDir: dir})
	check(err)
	defer sesSvc.Stop()
	const table, stage = "rollcall-bench-mail", "local"
	check(localstack.EnsureResources(ctx, tpl, ddbEndpoint, sesSvc.Endpoint, table, stage))
	cfg := app.Config{Stage: stage, TableName: table, Region: localstack.Region, DynamoDBEndpoint: ddbEndpoint,
		SESEndpoint: sesSvc.Endpoint, JWTSecret: "bench", SigningSecret: "bench-signing-secret-0123456789",
		PublicBaseURL: "http://rollcall.bench", MailFrom: "no-reply@rollcall.bench", MailTemplatePrefix: "rollcall-" + stage + "-",
		MailSendRate: rate, Logger: log}
	d, err := app.Build(ctx, cfg)
	check(err)
	staff := rollcall.Actor{Username: "bench", Staff: true}
	const mailCourse = "course-v1:Bench+Mail+2026"
	title := "Bench mail"
	_, _, err = d.Service.PutCourse(ctx, staff, mailCourse, rollcall.CourseInput{Title: &title})
	check(err)
	// n addresses without accounts: each is invited and owes an invitation mail.
	_, err = d.Service.BulkEnroll(ctx, staff, rollcall.Fields{
		"identifiers":    {Present: true, List: true, Values: learners("mail", n)},
		"courses":        {Present: true, Values: []string{mailCourse}},
		"action":         {Present: true, Values: []string{"enroll"}},
		"email_students": {Present: true, Values: []string{"true"}},
	})
	check(err)

	m, err := mail.NewMailer(ctx, d)
	check(err)
	sender := m.Sender.(*ses.Sender)
	invocations := 0
	lookup := func(_ context.Context, id string) (any, error) {
		if id != "MailerFunction" {
			return nil, fmt.Errorf("not in this case")
		}
		return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			invocations++ // one shard: invocations are sequential
			return m.Handle(ctx, ev)
		}, nil
	}
	stack, err := localstack.Assemble(ctx, localstack.StackOptions{Template: tpl, Lookup: lookup,
		DynamoDBEndpoint: ddbEndpoint, TableName: table, Streams: true, StreamFunctions: []string{"MailerFunction"},
		PollInterval: 50 * time.Millisecond})
	check(err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- stack.Run(runCtx) }()
	deadline := start.Add(time.Duration(float64(n)/rate*5)*time.Second + 2*time.Minute)
	for sender.Messages() < int64(n) {
		if time.Now().After(deadline) {
			cancel()
			check(fmt.Errorf("mail_drain: %d of %d mails sent before the deadline", sender.Messages(), n))
		}
		time.Sleep(20 * time.Millisecond)
	}
	secs := time.Since(start).Seconds()
	cancel()
	<-done
	calls, sent := sender.Calls(), sender.Messages()
	floor := float64(n) / rate
	floorCalls := (n + ses.MaxDestinations - 1) / ses.MaxDestinations
	return Case{Name: "mail_drain_10000", Items: n, ItemsChanged: int(sent), Seconds: secs, ItemsPerSecond: float64(sent) / secs,
		BaselineSeconds: floor, RatioToBaseline: secs / floor, SESCalls: calls, SESCallsFloor: int64(floorCalls),
		DestinationsPerCall: float64(sent) / float64(max(calls, 1)),
		Note: fmt.Sprintf("send rate %.0f/s; %d SendBulkEmail calls (floor %d) in %d mailer invocations; drained in %.1f s (floor %.1f s)",
			rate, calls, floorCalls, invocations, secs, floor)}
}
