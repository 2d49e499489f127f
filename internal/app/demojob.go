package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

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

// JobsConfig is what the roster job functions read besides the rest of Config: the chunk
// queue and the uploads bucket (template.yaml gives both functions JOB_QUEUE_URL and
// UPLOADS_BUCKET), and the local endpoints of ElasticMQ and the S3 emulator.
type JobsConfig struct {
	QueueURL      string // JOB_QUEUE_URL
	UploadsBucket string // UPLOADS_BUCKET
	SQSEndpoint   string // SQS_ENDPOINT (local)
	S3Endpoint    string // S3_ENDPOINT (local)
}

func jobsConfigFromEnv() JobsConfig {
	return JobsConfig{QueueURL: getenv("JOB_QUEUE_URL", ""), UploadsBucket: getenv("UPLOADS_BUCKET", ""),
		SQSEndpoint: getenv("SQS_ENDPOINT", ""), S3Endpoint: getenv("S3_ENDPOINT", "")}
}

// IAMValues are what the job resources' references in template.yaml evaluate to locally
// (!Ref and !GetAtt ... .Arn of JobQueue and UploadsBucket), for the local IAM check of the
// functions' policies.
func (j JobsConfig) IAMValues() map[string]string {
	v := map[string]string{}
	if j.QueueURL != "" {
		name := j.QueueURL[strings.LastIndexByte(j.QueueURL, '/')+1:]
		v["JobQueue"] = j.QueueURL
		v["JobQueue.Arn"] = "arn:aws:sqs:us-east-1:123456789012:" + name
	}
	if j.UploadsBucket != "" {
		v["UploadsBucket"] = j.UploadsBucket
		v["UploadsBucket.Arn"] = "arn:aws:s3:::" + j.UploadsBucket
	}
	return v
}
