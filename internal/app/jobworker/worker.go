// Package jobworker builds JobWorkerFunction, the SQS function that runs chunks of roster
// jobs. It links the job queue's client, not SES (MailerFunction sends job_finished from the
// job's final write), the HTTP adapter or S3.
package jobworker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/jobsvc"
	"github.com/rollcall/rollcall/internal/app/keys"
	"github.com/rollcall/rollcall/internal/jobqueue"
	"github.com/rollcall/rollcall/internal/rollcall"
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

// NewWorker is the job service of JobWorkerFunction. It sends no mail: the job's final state
// reaches MailerFunction on the table's stream, which mails the creator (job_finished), so
// this binary links no SES client.
func NewWorker(d *app.Deps) (*rollcall.JobService, error) {
	return jobsvc.New(d), nil
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
