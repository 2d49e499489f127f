package app

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/jobqueue"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/ses"
	"github.com/rollcall/rollcall/internal/uploads"
)

// JobsConfig is what the roster job functions read besides Config: the chunk queue and the
// uploads bucket (template.yaml gives both functions JOB_QUEUE_URL and UPLOADS_BUCKET), and
// the local endpoints of ElasticMQ and the S3 emulator.
type JobsConfig struct {
	QueueURL      string // JOB_QUEUE_URL
	UploadsBucket string // UPLOADS_BUCKET
	SQSEndpoint   string // SQS_ENDPOINT (local)
	S3Endpoint    string // S3_ENDPOINT (local)
}

func jobsConfigFromEnv() JobsConfig {
	return JobsConfig{QueueURL: os.Getenv("JOB_QUEUE_URL"), UploadsBucket: os.Getenv("UPLOADS_BUCKET"),
		SQSEndpoint: os.Getenv("SQS_ENDPOINT"), S3Endpoint: os.Getenv("S3_ENDPOINT")}
}

// JobService builds the roster job service over the deps' bulk enroll service.
func (d *Deps) JobService(ctx context.Context) (*rollcall.JobService, error) {
	jc := d.Config.Jobs
	if jc.QueueURL == "" {
		return nil, fmt.Errorf("config: JOB_QUEUE_URL is required for roster jobs")
	}
	sqsClient := sqs.NewFromConfig(d.AWS, func(o *sqs.Options) {
		if jc.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(jc.SQSEndpoint)
		}
	})
	js := &rollcall.JobService{Service: d.Service, Jobs: d.Store, Queue: &jobqueue.Queue{Client: sqsClient, URL: jc.QueueURL}}
	if jc.UploadsBucket != "" {
		s3Client := s3.NewFromConfig(d.AWS, func(o *s3.Options) {
			if jc.S3Endpoint != "" {
				o.BaseEndpoint = aws.String(jc.S3Endpoint)
				o.UsePathStyle = true
			}
		})
		js.Uploads = &uploads.Store{Client: s3Client, Bucket: jc.UploadsBucket, Now: d.Config.Now}
	}
	return js, nil
}

// jobMail sends job_finished through SES (the emulator locally).
type jobMail struct {
	sender  rollcall.MailSender
	baseURL string
}

func (m *jobMail) JobFinished(ctx context.Context, j *rollcall.Job) error {
	data := map[string]string{
		"name": j.CreatedBy, "name_html": html.EscapeString(j.CreatedBy), "job_id": j.ID, "state": j.State,
		"total": strconv.Itoa(j.Counts.Total), "changed": strconv.Itoa(j.Counts.Changed),
		"unchanged": strconv.Itoa(j.Counts.Unchanged), "invalid": strconv.Itoa(j.Counts.Invalid),
		"errors":      strconv.Itoa(j.Counts.Errors),
		"results_url": m.baseURL + httpapi.JobPath(j.ID) + "/results",
	}
	res := m.sender.Send(ctx, "job_finished", []rollcall.MailMessage{{To: j.CreatorEm, Data: data}})
	if len(res) == 1 && res[0].Outcome == rollcall.MailRetry {
		return res[0].Err
	}
	// Rejected (a bad address): sending again fails the same way; the job stands.
	return nil
}

// JobWorker builds JobWorkerFunction's service: the job service with the job_finished mail.
func (d *Deps) JobWorker(ctx context.Context) (*rollcall.JobService, error) {
	js, err := d.JobService(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := d.LoadKeys(ctx); err != nil { // invitations made by a chunk are sealed
		return nil, err
	}
	base := strings.TrimRight(d.Config.PublicBaseURL, "/")
	if base == "" {
		port := os.Getenv("PORT")
		if port == "" {
			port = "3000"
		}
		base = "http://127.0.0.1:" + port
	}
	if _, err := ses.BareAddress(d.Config.MailFrom); err != nil {
		return nil, fmt.Errorf("config: MAIL_FROM: %w", err)
	}
	js.Mail = &jobMail{sender: &ses.Sender{Client: d.SES(), From: d.Config.MailFrom, TemplatePrefix: d.Config.MailTemplatePrefix,
		ConfigurationSet: os.Getenv("MAIL_CONFIGURATION_SET")}, baseURL: base}
	return js, nil
}

// HandleChunks runs an SQS batch of chunks, one after another, and reports the ones to
// deliver again (an outage) as partial batch failures; the others are done, whatever their
// rows' outcomes.
func HandleChunks(ctx context.Context, js *rollcall.JobService, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		c, err := rollcall.DecodeChunk(m.Body)
		if err == nil {
			err = js.RunChunk(ctx, c)
		}
		if err != nil {
			js.Log.ErrorContext(ctx, "jobs: chunk failed; it will be delivered again", "message_id", m.MessageId,
				"receive_count", m.Attributes["ApproximateReceiveCount"], "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

func init() {
	jobsHTTP := HTTPFunction("JobsFunction", true, true, func(d *Deps) map[string]http.HandlerFunc {
		js, _ := d.JobService(context.Background()) // cannot fail once the queue URL is set
		return (&httpapi.JobsAPI{API: d.API(), Jobs: js}).JobOps()
	})
	registry["JobsFunction"] = func(ctx context.Context, c Config) (any, error) {
		if c.Jobs.QueueURL == "" {
			return nil, fmt.Errorf("config: JOB_QUEUE_URL is required for roster jobs")
		}
		return jobsHTTP(ctx, c)
	}
	registry["JobWorkerFunction"] = func(ctx context.Context, c Config) (any, error) {
		d, err := Build(ctx, c)
		if err != nil {
			return nil, err
		}
		if err := d.LoadIDKey(ctx); err != nil {
			return nil, err
		}
		d.Service.Metrics = emfMetrics{function: "JobWorkerFunction"}
		js, err := d.JobWorker(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			return HandleChunks(ctx, js, ev)
		}, nil
	}
}

// DemoJobID is the roster job that events/JobWorkerFunction.json runs a chunk of.
const DemoJobID = "00000000000000000000000000000de0"

// ensureDemoJob creates the demo job (queued, one chunk of one row) unless it exists.
func (d *Deps) ensureDemoJob(ctx context.Context) error {
	j, err := d.Store.GetJob(ctx, DemoJobID)
	if err != nil {
		return fmt.Errorf("demo job: %w", err)
	}
	if j != nil {
		return nil
	}
	err = d.Store.CreateJob(ctx, &rollcall.Job{ID: DemoJobID, State: rollcall.JobQueued, Format: rollcall.JobFormatCanvas,
		CreatedBy: DemoUsername, CreatorEm: DemoEmail, Staff: true, CreatedAt: d.Service.Clock(),
		Counts: rollcall.JobCounts{Total: 1}, Chunks: 1})
	if err != nil {
		return fmt.Errorf("demo job: %w", err)
	}
	return nil
}
