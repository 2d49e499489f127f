package localstack

import (
	"context"
	"errors"
	"sync"
)

// Ephemeral is an in-memory DynamoDB Local and an SES emulator on free ports, for tests and
// throwaway stacks. A field is nil when its service was not asked for.
type Ephemeral struct {
	DynamoDB *Service
	SES      *Service
}

// StartEphemeral starts the services asked for side by side (the JVM's start-up dominates;
// node's hides behind it), logging under dataDir. On an error it stops whatever it started.
func StartEphemeral(ctx context.Context, dataDir string, dynamoDB, ses bool) (*Ephemeral, error) {
	var (
		wg             sync.WaitGroup
		e              Ephemeral
		ddbErr, sesErr error
	)
	if dynamoDB {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.DynamoDB, ddbErr = StartDynamoDBLocal(ctx, DynamoDBOptions{DataDir: dataDir, InMemory: true})
		}()
	}
	if ses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.SES, sesErr = StartSES(ctx, SESOptions{DataDir: dataDir})
		}()
	}
	wg.Wait()
	if err := errors.Join(ddbErr, sesErr); err != nil {
		e.Stop()
		return nil, err
	}
	return &e, nil
}

// Services lists the services that were started.
func (e *Ephemeral) Services() []*Service {
	var out []*Service
	for _, s := range []*Service{e.DynamoDB, e.SES} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Stop stops them.
func (e *Ephemeral) Stop() {
	for _, s := range e.Services() {
		_ = s.Stop()
	}
}

// JobServices are ElasticMQ (SQS) and the S3 emulator, which only the roster jobs need.
type JobServices struct {
	SQS *Service
	S3  *Service
}

// StartJobServices starts ElasticMQ and the S3 emulator side by side on free ports, logging
// under dataDir. On an error it stops whatever it started.
func StartJobServices(ctx context.Context, dataDir string) (*JobServices, error) {
	var (
		wg            sync.WaitGroup
		j             JobServices
		sqsErr, s3Err error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		j.SQS, sqsErr = StartElasticMQ(ctx, ElasticMQOptions{DataDir: dataDir})
	}()
	go func() {
		defer wg.Done()
		j.S3, s3Err = StartS3(ctx, S3Options{DataDir: dataDir})
	}()
	wg.Wait()
	if err := errors.Join(sqsErr, s3Err); err != nil {
		j.Stop()
		return nil, err
	}
	return &j, nil
}

// Services lists the services that were started.
func (j *JobServices) Services() []*Service {
	var out []*Service
	for _, s := range []*Service{j.SQS, j.S3} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Stop stops them.
func (j *JobServices) Stop() {
	for _, s := range j.Services() {
		_ = s.Stop()
	}
}
