package testenv

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rollcall/rollcall/internal/localstack"
)

// Environment variables naming an already-running ElasticMQ and S3 emulator.
const (
	SQSEndpointEnv = "ROLLCALL_TEST_SQS_ENDPOINT"
	S3EndpointEnv  = "ROLLCALL_TEST_S3_ENDPOINT"
)

// JobEnv is the SQS (ElasticMQ) and S3 emulator endpoints of the test environment.
type JobEnv struct {
	SQSEndpoint string
	S3Endpoint  string
}

var (
	jobOnce sync.Once
	jobEnv  *JobEnv
	jobErr  error
)

// Jobs returns the queue and object-store endpoints, starting ElasticMQ and the S3 emulator
// on first use (only the roster job tests need them, so other test binaries never pay for
// another JVM). Like Start, it skips under -short.
func Jobs(t testing.TB) *JobEnv {
	t.Helper()
	Start(t)
	jobOnce.Do(func() {
		e := &JobEnv{SQSEndpoint: os.Getenv(SQSEndpointEnv), S3Endpoint: os.Getenv(S3EndpointEnv)}
		if e.SQSEndpoint == "" || e.S3Endpoint == "" {
			dir, err := os.MkdirTemp("", "rollcall-testenv-jobs-")
			if err != nil {
				jobErr = err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			js, err := localstack.StartJobServices(ctx, dir)
			if err != nil {
				jobErr = err
				return
			}
			started = append(started, js.Services()...)
			e.SQSEndpoint, e.S3Endpoint = js.SQS.Endpoint, js.S3.Endpoint
		}
		jobEnv = e
	})
	if jobErr != nil {
		t.Fatalf("testenv: %v", jobErr)
	}
	return jobEnv
}

// NewQueues creates the template's queues under a unique prefix (deleted when the test ends)
// and returns an SQS client and their URLs by logical id.
func NewQueues(t testing.TB, opts ...localstack.QueueOption) (*sqs.Client, map[string]string) {
	t.Helper()
	client := localstack.NewSQSClient(Jobs(t).SQSEndpoint)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	urls, err := localstack.EnsureQueues(ctx, client, Start(t).Template, "rollcall-test-"+randomHex(6), opts...)
	if err != nil {
		t.Fatalf("testenv: create queues: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, u := range urls {
			_, _ = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &u})
		}
	})
	return client, urls
}

// NewBuckets creates the template's buckets under a unique prefix and returns an S3 client
// and their names by logical id.
func NewBuckets(t testing.TB) (*s3.Client, map[string]string) {
	t.Helper()
	client := localstack.NewS3Client(Jobs(t).S3Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := localstack.EnsureBuckets(ctx, client, Start(t).Template, "rollcall-test-"+randomHex(6))
	if err != nil {
		t.Fatalf("testenv: create buckets: %v", err)
	}
	return client, names
}
