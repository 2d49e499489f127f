// Package jobworker builds JobWorkerFunction, the SQS function that runs chunks of roster
// jobs and mails job_finished. It links SES and SQS, not the HTTP adapter or S3.
package jobworker

import (
	"context"
	"errors"
	"fmt"
	"html"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/jobsvc"
	"github.com/rollcall/rollcall/internal/app/keys"
	"github.com/rollcall/rollcall/internal/jobqueue"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/stream"
)

// JobWorkerFunction builds the SQS function that runs chunks of roster jobs.
func JobWorkerFunction(ctx context.Context, c app.Config) (any, error) {
	if c.Jobs.QueueURL == "" {
		return nil, fmt.Errorf("config: JOB_QUEUE_URL is required for roster jobs")
	}
	d, err := app.Build(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := keys.Stable(ctx, d); err != nil {
		return nil, err
	}
	if _, err := keys.Signing(ctx, d); err != nil { // invitations a chunk makes are sealed
		return nil, err
	}
	d.Service.Metrics = app.EMF("JobWorkerFunction")
	js, err := NewWorker(d)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return HandleChunks(ctx, js, ev)
	}, nil
}

// NewWorker is the job service of JobWorkerFunction: with the job_finished mail.
func NewWorker(d *app.Deps) (*rollcall.JobService, error) {
	js := jobsvc.New(d)
	base, err := d.Config.LinkBase("the job worker")
	if err != nil {
		return nil, err
	}
	if _, err := ses.BareAddress(d.Config.MailFrom); err != nil {
		return nil, fmt.Errorf("config: MAIL_FROM: want an address or \"Name <address>\": %w", err)
	}
	client := sesv2.NewFromConfig(d.AWS, func(o *sesv2.Options) {
		if d.Config.SESEndpoint != "" {
			o.BaseEndpoint = aws.String(d.Config.SESEndpoint)
		}
	})
	js.Mail = &jobMail{sender: &ses.Sender{Client: client, From: d.Config.MailFrom, TemplatePrefix: d.Config.MailTemplatePrefix,
		ConfigurationSet: os.Getenv("MAIL_CONFIGURATION_SET")}, baseURL: base, prefs: d.Store.MailPreferences}
	return js, nil
}

// jobMail sends job_finished through SES (the emulator locally), in the creator's pref-lang.
type jobMail struct {
	sender  rollcall.MailSender
	baseURL string
	prefs   func(ctx context.Context, usernames []string) (map[string]rollcall.MailPreferences, error)
}

func (m *jobMail) JobFinished(ctx context.Context, j *rollcall.Job) error {
	data := map[string]string{
		"name": j.CreatedBy, "name_html": html.EscapeString(j.CreatedBy), "job_id": j.ID, "state": j.State,
		"total": strconv.Itoa(j.Counts.Total), "changed": strconv.Itoa(j.Counts.Changed),
		"unchanged": strconv.Itoa(j.Counts.Unchanged), "invalid": strconv.Itoa(j.Counts.Invalid),
		"errors":      strconv.Itoa(j.Counts.Errors),
		"results_url": m.baseURL + rollcall.JobsPath + "/" + j.ID + "/results",
	}
	kind := string(rollcall.MailJobFinished)
	if m.prefs != nil {
		// The creator's language, as the mailer picks it for learners; English if unknown.
		if p, err := m.prefs(ctx, []string{j.CreatedBy}); err == nil {
			kind = stream.TemplateKind(rollcall.MailJobFinished, stream.MailLanguage(p[rollcall.NormalizeUsername(j.CreatedBy)].Lang))
		}
	}
	res := m.sender.Send(ctx, kind, []rollcall.MailMessage{{To: j.CreatorEm, Data: data}})
	if len(res) == 1 && res[0].Outcome == rollcall.MailRetry {
		return res[0].Err
	}
	// Rejected (a bad address): sending again fails the same way; the job stands.
	return nil
}

// HandleChunks runs an SQS batch of chunks, one after another, and reports the ones to
// deliver again (an outage, a chunk another run holds) as partial batch failures; the
// others are done, whatever their rows' outcomes.
func HandleChunks(ctx context.Context, js *rollcall.JobService, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		c, err := rollcall.DecodeChunk(m.Body)
		if err == nil {
			err = js.RunChunk(ctx, c)
		}
		if errors.Is(err, rollcall.ErrCourseBusy) || errors.Is(err, rollcall.ErrJobChunkRetry) {
			// Another chunk holds the course (chunks of one course run one at a time), or
			// another delivery runs this chunk: come back in a few seconds, not after the
			// visibility timeout.
			if q, ok := js.Queue.(*jobqueue.Queue); ok && m.ReceiptHandle != "" {
				if verr := q.RetrySoon(context.WithoutCancel(ctx), m.ReceiptHandle, time.Duration(1+rand.IntN(3))*time.Second); verr != nil {
					js.Log.WarnContext(ctx, "jobs: could not shorten a busy chunk's wait", "message_id", m.MessageId, "error", verr)
				}
			}
			js.Log.InfoContext(ctx, "jobs: chunk busy; it will be delivered again shortly", "message_id", m.MessageId, "reason", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		if err != nil {
			js.Log.ErrorContext(ctx, "jobs: chunk failed; it will be delivered again", "message_id", m.MessageId,
				"receive_count", m.Attributes["ApproximateReceiveCount"], "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}
