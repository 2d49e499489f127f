package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/jobworker"
	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// jobCases are job_<n> and job_<n>_repeat: a roster job of n identifier x course pairs (an
// identifiers CSV into one course) through ElasticMQ and JobWorkerFunction (the queue runner
// with the template's BatchSize; jobPollers invocations at once, as Lambda scales its SQS
// pollers), beside the raw BatchWriteItem loop writing the same enrollments with as many
// writers as the store uses. Timed from the POST to the job's end; first progress is the time
// from the 202 until the job shows a processed row. The repeat must write no enrollment.
func jobCases(ctx context.Context, ddbEndpoint string, tpl *samtemplate.Template, log *slog.Logger, raw *rawLoop, n, pollers int) []Case {
	dir, err := os.MkdirTemp("", "rollcall-bench-sqs-")
	check(err)
	defer os.RemoveAll(dir)
	mq, err := localstack.StartElasticMQ(ctx, localstack.ElasticMQOptions{DataDir: dir})
	check(err)
	defer mq.Stop()
	const table = "rollcall-bench-job"
	check(localstack.EnsureTable(ctx, localstack.NewDynamoDBClient(ddbEndpoint), tpl, table, localstack.WithoutStream()))
	sqsClient := localstack.NewSQSClient(mq.Endpoint)
	urls, err := localstack.EnsureQueues(ctx, sqsClient, tpl, table)
	check(err)
	cfg := app.Config{Stage: "local", TableName: table, Region: localstack.Region, DynamoDBEndpoint: ddbEndpoint,
		JWTSecret: "bench", SigningSecret: "bench-signing-secret-0123456789", PublicBaseURL: "http://rollcall.bench",
		MailFrom: "no-reply@rollcall.bench", MailTemplatePrefix: "rollcall-local-", Logger: log,
		Jobs: app.JobsConfig{QueueURL: urls["JobQueue"], SQSEndpoint: mq.Endpoint}}
	d, err := app.Build(ctx, cfg)
	check(err)
	counter := &enrollmentWrites{API: d.Store.DB}
	d.Store.DB = counter
	js, err := jobworker.NewWorker(d)
	check(err)
	staff := rollcall.Actor{Username: "bench", Staff: true}
	const jobCourse = "course-v1:Bench+Job+2026"
	title := "Bench job"
	_, _, err = d.Service.PutCourse(ctx, staff, jobCourse, rollcall.CourseInput{Title: &title})
	check(err)

	lookup := func(_ context.Context, id string) (any, error) {
		if id != "JobWorkerFunction" {
			return nil, fmt.Errorf("not in this case")
		}
		return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			return jobworker.HandleChunks(ctx, js, ev)
		}, nil
	}
	runner, err := localstack.NewQueueRunner(localstack.QueueRunnerOptions{Template: tpl, Invoker: localstack.NewInvoker(tpl, lookup, log),
		SQS: sqsClient, QueueURLs: urls, Pollers: pollers, Logger: log})
	check(err)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = runner.Run(runCtx) }()

	ids := learners("job", n)
	csv := "identifier\n" + strings.Join(ids, "\n") + "\n"
	run := func(name string) Case {
		m0 := d.Store.Metrics.Snapshot()
		w0 := counter.n.Load()
		start := time.Now()
		j, err := js.CreateJob(ctx, staff, rollcall.JobInput{Fields: rollcall.Fields{
			"format":  {Present: true, Values: []string{rollcall.JobFormatIdentifiers}},
			"courses": {Present: true, Values: []string{jobCourse}},
		}, File: strings.NewReader(csv)})
		check(err)
		accepted := time.Now()
		var firstProgress time.Duration
		for {
			cur, err := js.Jobs.GetJob(ctx, j.ID)
			check(err)
			if firstProgress == 0 && cur.Counts.Processed > 0 {
				firstProgress = time.Since(accepted)
			}
			if rollcall.JobFinal(cur.State) {
				j = cur
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		secs := time.Since(start).Seconds()
		if j.State != rollcall.JobSucceeded || j.Counts.Processed != n {
			panic(fmt.Sprintf("bench: job ended %s with %+v", j.State, j.Counts))
		}
		m := d.Store.Metrics.Snapshot().Sub(m0)
		return Case{Name: name, Items: n, ItemsChanged: j.Counts.Changed, Seconds: secs, ItemsPerSecond: float64(n) / secs,
			Requests: m.Requests, ReadUnits: m.ReadUnits, WriteUnits: m.TableWriteUnits, IndexWriteUnits: m.IndexWriteUnits,
			FirstProgressSeconds: firstProgress.Seconds(), EnrollmentWrites: counter.n.Load() - w0}
	}
	first := run(fmt.Sprintf("job_%d", n))
	// The baseline: the same enrollments, written by the parallel raw loop.
	enrollmentIDs := make([]string, n)
	for i, id := range ids {
		enrollmentIDs[i] = rollcall.EnrollmentID(jobCourse, id)
	}
	stored, err := d.Store.GetEnrollments(ctx, enrollmentIDs)
	check(err)
	items := make([]map[string]types.AttributeValue, 0, n)
	for _, e := range stored {
		items = append(items, dynamo.EncodeEnrollment(e))
	}
	first.Writers = d.Store.Parallel
	first.BaselineSeconds = raw.write(ctx, raw.table, items, types.ReturnConsumedCapacityIndexes, first.Writers)
	first.RatioToBaseline = first.BaselineSeconds / first.Seconds
	first.Note = fmt.Sprintf("%d chunks of %d rows, %d concurrent worker invocations", (n+rollcall.ChunkRows-1)/rollcall.ChunkRows, rollcall.ChunkRows, pollers)
	repeat := run(fmt.Sprintf("job_%d_repeat", n))
	repeat.Note = "all no-ops: write units are the job's own records (chunk results, claims, counts)"
	return []Case{first, repeat}
}

// jobBudgets are the job case's budgets.
func jobBudgets(c Case) []Budget {
	if strings.HasSuffix(c.Name, "_repeat") {
		return []Budget{{c.Name + " enrollment writes", float64(c.EnrollmentWrites), "== 0", c.EnrollmentWrites == 0}}
	}
	return []Budget{
		{c.Name + " throughput / parallel raw loop", c.RatioToBaseline, ">= 0.7", c.RatioToBaseline >= 0.7},
		{c.Name + " first progress seconds after the 202", c.FirstProgressSeconds, "<= 2", c.FirstProgressSeconds > 0 && c.FirstProgressSeconds <= 2},
	}
}

// enrollmentWrites counts the enrollment items (PK P#..., SK E#...) the store writes.
type enrollmentWrites struct {
	dynamo.API
	n atomic.Int64
}

func isEnrollment(it map[string]types.AttributeValue) bool {
	pk, _ := it["PK"].(*types.AttributeValueMemberS)
	sk, _ := it["SK"].(*types.AttributeValueMemberS)
	return pk != nil && sk != nil && strings.HasPrefix(pk.Value, "P#") && strings.HasPrefix(sk.Value, "E#")
}

func (w *enrollmentWrites) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	out, err := w.API.BatchWriteItem(ctx, in, o...)
	if err == nil {
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil && isEnrollment(r.PutRequest.Item) {
					w.n.Add(1)
				}
			}
		}
		for _, reqs := range out.UnprocessedItems {
			for _, r := range reqs {
				if r.PutRequest != nil && isEnrollment(r.PutRequest.Item) {
					w.n.Add(-1)
				}
			}
		}
	}
	return out, err
}

func (w *enrollmentWrites) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := w.API.TransactWriteItems(ctx, in, o...)
	if err == nil {
		for _, it := range in.TransactItems {
			if it.Put != nil && isEnrollment(it.Put.Item) || it.Update != nil && isEnrollment(it.Update.Key) {
				w.n.Add(1)
			}
		}
	}
	return out, err
}

func (w *enrollmentWrites) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := w.API.PutItem(ctx, in, o...)
	if err == nil && isEnrollment(in.Item) {
		w.n.Add(1)
	}
	return out, err
}

func (w *enrollmentWrites) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := w.API.UpdateItem(ctx, in, o...)
	if err == nil && isEnrollment(in.Key) {
		w.n.Add(1)
	}
	return out, err
}
