// Package jobsvc builds the roster job service on the job queue that both job functions share
// (internal/app/jobs adds the uploads bucket, internal/app/jobworker the job_finished mail).
package jobsvc

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/jobqueue"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// New is the roster job service over d's bulk enroll service and the job queue. The queue's
// client is jobqueue's own (two SQS operations), not the SDK's SQS module, whose
// initialization would cost every cold start of both job functions (make bench).
func New(d *app.Deps) *rollcall.JobService {
	jc := d.Config.Jobs
	sqsClient := &jobqueue.Client{Call: awscall.New(d.AWS, "SQS", "sqs", d.Config.Authorize), Endpoint: jc.SQSEndpoint}
	return &rollcall.JobService{Service: d.Service, Jobs: d.Store, Queue: &jobqueue.Queue{Client: sqsClient, URL: jc.QueueURL}}
}
