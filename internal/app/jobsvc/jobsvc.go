// Package jobsvc builds the roster job service on the job queue that both job functions share
// (internal/app/jobs adds the uploads bucket, internal/app/jobworker the job_finished mail).
package jobsvc

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/jobqueue"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// New is the roster job service over d's bulk enroll service and the job queue.
func New(d *app.Deps) *rollcall.JobService {
	jc := d.Config.Jobs
	sqsClient := sqs.NewFromConfig(d.AWS, func(o *sqs.Options) {
		if jc.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(jc.SQSEndpoint)
		}
	})
	return &rollcall.JobService{Service: d.Service, Jobs: d.Store, Queue: &jobqueue.Queue{Client: sqsClient, URL: jc.QueueURL}}
}
