package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// StreamRunnerOptions configures a StreamRunner.
type StreamRunnerOptions struct {
	Template  *samtemplate.Template
	Invoker   *Invoker
	DynamoDB  *dynamodb.Client        // to find the table's stream
	Streams   *dynamodbstreams.Client // to read it
	TableName string
	// CheckpointDir keeps one <Function>.<Event>.json per consumer; "" keeps positions in
	// memory only (a restart then starts from the template's StartingPosition).
	CheckpointDir string
	// PollInterval between reads of an idle stream; default 250 ms.
	PollInterval time.Duration
	// MaxBackoff caps the delay between retries of a failing batch; default 30 s.
	MaxBackoff time.Duration
	// RetryForever keeps retrying a failing batch past the event's MaximumRetryAttempts and
	// MaximumRecordAgeInSeconds. Off by default: like Lambda, the runner gives such records up
	// and hands them to the event's on-failure destination (DeadLetters).
	RetryForever bool
	// Now is the clock records' ages are measured with; nil means time.Now.
	Now func() time.Time
	// Functions restricts the runner to these logical ids; default every function with a
	// DynamoDB event on the table.
	Functions []string
	Logger    *slog.Logger
}

// StreamRunner plays Lambda's DynamoDB event source mappings against DynamoDB Local: for every
// function with a DynamoDB event on the table it polls the table's stream, delivers batches of
// up to BatchSize records as events.DynamoDBEvent, and advances only past what the function
// processed. With ReportBatchItemFailures a reported failure makes it retry from that record
// (with backoff, never skipping it); a function error retries the whole batch, halved each time
// when BisectBatchOnFunctionError is set. Each consumer checkpoints its own position.
//
// A batch that still fails after the event's MaximumRetryAttempts, and records older than its
// MaximumRecordAgeInSeconds, are given up as Lambda gives them up: the consumer moves past
// them and records a dead letter (what Lambda sends to DestinationConfig.OnFailure: the
// function, the shard and the range of sequence numbers, not the records). There is no SQS
// emulator: dead letters stay in the runner (DeadLetters) and are logged at error level.
type StreamRunner struct {
	opts      StreamRunnerOptions
	log       *slog.Logger
	consumers []*consumer

	dlMu        sync.Mutex
	deadLetters []DeadLetter
}

// DeadLetter is one batch given up, as Lambda's on-failure record for a stream source
// describes it.
type DeadLetter struct {
	Function    string `json:"function"`
	Event       string `json:"event"`
	Destination string `json:"destination"` // the on-failure resource's logical id ("" = none: dropped)
	// Condition is why: RetryAttemptsExhausted or RecordAgeExceeded (Lambda's names).
	Condition           string    `json:"condition"`
	ShardID             string    `json:"shardId"`
	StartSequenceNumber string    `json:"startSequenceNumber"`
	EndSequenceNumber   string    `json:"endSequenceNumber"`
	BatchSize           int       `json:"batchSize"`
	Attempts            int       `json:"attempts"`
	Error               string    `json:"error,omitempty"`
	At                  time.Time `json:"at"`
}

// DeadLetters returns the batches given up so far, oldest first.
func (r *StreamRunner) DeadLetters() []DeadLetter {
	r.dlMu.Lock()
	defer r.dlMu.Unlock()
	return append([]DeadLetter(nil), r.deadLetters...)
}

func (r *StreamRunner) now() time.Time {
	if r.opts.Now != nil {
		return r.opts.Now()
	}
	return time.Now()
}

// giveUp records recs (all of one shard, in order) as a dead letter and logs it.
func (c *consumer) giveUp(shard, condition string, recs []types.Record, attempts int, err error) {
	if len(recs) == 0 {
		return
	}
	dl := DeadLetter{Function: c.fn, Event: c.ev.EventName, Destination: c.ev.OnFailureResource, Condition: condition,
		ShardID: shard, StartSequenceNumber: seqOf(recs[0]), EndSequenceNumber: seqOf(recs[len(recs)-1]),
		BatchSize: len(recs), Attempts: attempts, At: c.r.now()}
	if err != nil {
		dl.Error = err.Error()
	}
	c.r.dlMu.Lock()
	c.r.deadLetters = append(c.r.deadLetters, dl)
	c.r.dlMu.Unlock()
	msg := "stream records given up; dead letter kept in the runner (no SQS emulator)"
	if dl.Destination == "" {
		msg = "stream records given up and dropped (the event has no on-failure destination)"
	}
	c.r.log.Error(msg, "function", c.fn, "event", c.ev.EventName, "destination", dl.Destination, "condition", condition,
		"shard", shard, "start_sequence_number", dl.StartSequenceNumber, "end_sequence_number", dl.EndSequenceNumber,
		"records", len(recs), "attempts", attempts, "err", dl.Error)
}

// NewStreamRunner prepares the consumers; Run starts them.
func NewStreamRunner(opts StreamRunnerOptions) (*StreamRunner, error) {
	if opts.Template == nil || opts.Invoker == nil || opts.DynamoDB == nil || opts.Streams == nil || opts.TableName == "" {
		return nil, errors.New("localstack: StreamRunnerOptions needs Template, Invoker, DynamoDB, Streams and TableName")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	spec, err := opts.Template.Table(opts.TableName)
	if err != nil {
		return nil, err
	}
	only := map[string]bool{}
	for _, f := range opts.Functions {
		only[f] = true
	}
	r := &StreamRunner{opts: opts, log: opts.Logger}
	for _, fn := range opts.Template.Functions() {
		if len(only) > 0 && !only[fn.LogicalID] {
			continue
		}
		for _, ev := range fn.Streams {
			if ev.Table != "" && ev.Table != spec.LogicalID {
				continue
			}
			r.consumers = append(r.consumers, &consumer{r: r, fn: fn.LogicalID, ev: ev})
		}
	}
	return r, nil
}

// Consumers lists "Function.Event" for every stream consumer.
func (r *StreamRunner) Consumers() []string {
	var out []string
	for _, c := range r.consumers {
		out = append(out, c.fn+"."+c.ev.EventName)
	}
	return out
}

// Run polls until ctx is cancelled, then returns nil. It fails early if the table has no
// stream or a checkpoint cannot be read.
func (r *StreamRunner) Run(ctx context.Context) error {
	if len(r.consumers) == 0 {
		<-ctx.Done()
		return nil
	}
	desc, err := r.opts.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.opts.TableName)})
	if err != nil {
		return fmt.Errorf("stream runner: %w", err)
	}
	streamArn := aws.ToString(desc.Table.LatestStreamArn)
	if streamArn == "" {
		return fmt.Errorf("stream runner: table %s has no stream", r.opts.TableName)
	}
	for _, c := range r.consumers {
		path := ""
		if r.opts.CheckpointDir != "" {
			path = filepath.Join(r.opts.CheckpointDir, c.fn+"."+c.ev.EventName+".json")
		}
		if c.cp, err = loadCheckpoint(path, streamArn); err != nil {
			return fmt.Errorf("stream runner: %w", err)
		}
		c.streamArn = streamArn
		c.shards = map[string]*shardRun{}
	}
	var wg sync.WaitGroup
	for _, c := range r.consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

type consumer struct {
	r         *StreamRunner
	fn        string
	ev        samtemplate.StreamEvent
	streamArn string
	cp        *checkpoint
	shards    map[string]*shardRun
	started   bool // the first DescribeStream happened (shards open then may start at LATEST)
	lastErr   string
}

// shardRun is a consumer's in-memory state for one shard.
type shardRun struct {
	iter      *string
	fromStart bool   // open when the consumer started: StartingPosition applies
	retryAt   string // first undelivered record of a failed batch: re-read from here
	limit     int32  // batch size; halved on function errors when bisecting
	failures  int
	notBefore time.Time
	// Records read but not delivered yet (the batching window), since when, and whether the
	// iterator has reached the end of a closed shard.
	pending       []types.Record
	gatheredSince time.Time
	closed        bool
}

func (c *consumer) loop(ctx context.Context) {
	errDelay := c.r.opts.PollInterval
	for ctx.Err() == nil {
		busy, err := c.poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if err.Error() != c.lastErr {
				c.r.log.Warn("stream poll failed", "function", c.fn, "err", err)
				c.lastErr = err.Error()
			}
			errDelay = min(2*errDelay, c.r.opts.MaxBackoff)
			sleep(ctx, errDelay)
			continue
		case err == nil:
			c.lastErr, errDelay = "", c.r.opts.PollInterval
		}
		if !busy {
			sleep(ctx, c.r.opts.PollInterval)
		}
	}
}

// poll reads each readable shard once; busy reports whether anything was delivered (so the
// caller polls again at once to drain a backlog).
func (c *consumer) poll(ctx context.Context) (busy bool, err error) {
	shards, err := c.describe(ctx)
	if err != nil {
		return false, err
	}
	known := map[string]bool{}
	for _, sh := range shards {
		known[aws.ToString(sh.ShardId)] = true
	}
	for id := range c.cp.Shards {
		if !known[id] { // trimmed from the stream: forget it
			delete(c.cp.Shards, id)
		}
	}
	first := !c.started
	c.started = true
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		st := c.cp.shard(id)
		run, ok := c.shards[id]
		if !ok {
			run = &shardRun{limit: int32(c.ev.BatchSize), fromStart: first}
			c.shards[id] = run
		}
		if st.Done {
			continue
		}
		// Records of a child shard come after its parent's: finish the parent first.
		if p := aws.ToString(sh.ParentShardId); p != "" && known[p] && !c.cp.shard(p).Done {
			continue
		}
		if time.Now().Before(run.notBefore) {
			continue
		}
		delivered, err := c.readShard(ctx, id, st, run)
		if err != nil {
			return busy, err
		}
		busy = busy || delivered
	}
	return busy, nil
}

// readShard does one GetRecords on a shard and delivers what it has gathered when Lambda
// would: once the batch is full (BatchSize), once MaximumBatchingWindowInSeconds has passed
// since its first record was read, or when the shard is closed. Until then the records wait
// in run.pending and the shard is polled again (a window of 0 delivers every read at once).
func (c *consumer) readShard(ctx context.Context, id string, st *shardState, run *shardRun) (bool, error) {
	if !run.closed {
		if run.iter == nil {
			it, err := c.iterator(ctx, id, st, run)
			if err != nil {
				return false, err
			}
			run.iter = it
		}
		limit := max(1, run.limit-int32(len(run.pending)))
		out, err := c.r.opts.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: run.iter, Limit: aws.Int32(limit)})
		var expired *types.ExpiredIteratorException
		var trimmed *types.TrimmedDataAccessException
		switch {
		case errors.As(err, &expired):
			run.iter, run.pending = nil, nil // re-read from the checkpoint, gathered records too
			return false, nil
		case errors.As(err, &trimmed):
			c.r.log.Warn("stream records were trimmed before delivery; resuming at the oldest", "function", c.fn, "shard", id)
			st.Seq, run.retryAt, run.iter, run.pending = "", "", nil, nil
			run.fromStart = false
			return false, nil
		case err != nil:
			return false, err
		}
		if len(out.Records) > 0 && len(run.pending) == 0 {
			run.gatheredSince = time.Now()
		}
		run.pending = append(run.pending, out.Records...)
		run.iter = out.NextShardIterator
		run.closed = run.iter == nil
	}
	if len(run.pending) == 0 {
		if run.closed { // closed and fully read
			st.Done = true
			return true, c.cp.save()
		}
		return false, nil
	}
	// A retry of a failed batch goes at once (after its backoff), as Lambda retries it.
	if len(run.pending) < int(run.limit) && !run.closed && run.failures == 0 && time.Since(run.gatheredSince) < c.ev.MaximumBatchingWindow {
		return false, nil // keep gathering
	}
	recs := run.pending
	run.pending = nil

	// Records older than MaximumRecordAgeInSeconds are given up before delivery (a shard
	// held up by a failing record gets there while it retries).
	if age := c.ev.MaximumRecordAge; age > 0 && !c.r.opts.RetryForever {
		cut := c.r.now().Add(-age)
		old := 0
		for old < len(recs) && !recordTime(recs[old]).IsZero() && recordTime(recs[old]).Before(cut) {
			old++
		}
		if old > 0 {
			c.giveUp(id, "RecordAgeExceeded", recs[:old], run.failures, nil)
			st.Seq = seqOf(recs[old-1])
			recs = recs[old:]
			run.retryAt, run.failures = "", 0
			if len(recs) == 0 {
				st.Done = run.closed
				return true, c.cp.save()
			}
			// The iterator is past these records too: re-read from the first young one
			// if this delivery fails.
		}
	}

	n, whole, err := c.deliver(ctx, recs)
	if n > 0 {
		st.Seq = seqOf(recs[n-1])
	}
	if err == nil {
		run.retryAt, run.failures, run.limit = "", 0, int32(c.ev.BatchSize)
		st.Done = run.closed
		return true, c.cp.save()
	}
	if ctx.Err() != nil {
		return false, c.cp.save() // shutting down: redeliver on the next start
	}

	// Failure: re-read from the first record that was not processed, after a backoff.
	run.failures++
	run.retryAt, run.iter, run.closed = seqOf(recs[n]), nil, false
	if whole && c.ev.BisectBatchOnFunctionError && len(recs) > 1 {
		run.limit = int32(max(1, len(recs)/2))
	}
	attrs := []any{"function", c.fn, "shard", id, "attempt", run.failures, "failed_at", run.retryAt, "err", err}
	if limit := c.ev.MaximumRetryAttempts; !c.r.opts.RetryForever && limit >= 0 && run.failures > limit {
		c.giveUp(id, "RetryAttemptsExhausted", recs[n:], run.failures, err)
		st.Seq = seqOf(recs[len(recs)-1])
		run.retryAt, run.failures, run.limit = "", 0, int32(c.ev.BatchSize)
		return true, c.cp.save()
	}
	delay := min(c.r.opts.PollInterval<<min(run.failures-1, 16), c.r.opts.MaxBackoff)
	run.notBefore = time.Now().Add(delay)
	c.r.log.Warn("stream batch failed; retrying from the failed record", append(attrs, "retry_in", delay)...)
	return n > 0, c.cp.save()
}

// iterator positions a shard iterator: at a failed record, after the checkpoint, or at the
// event's StartingPosition.
func (c *consumer) iterator(ctx context.Context, id string, st *shardState, run *shardRun) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(c.streamArn), ShardId: aws.String(id)}
	switch {
	case run.retryAt != "":
		in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(run.retryAt)
	case st.Seq != "":
		in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(st.Seq)
	case run.fromStart && c.ev.StartingPosition == "LATEST":
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	}
	out, err := c.r.opts.Streams.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("shard iterator %s: %w", id, err)
	}
	return out.ShardIterator, nil
}

// describe lists the stream's shards, parents before children.
func (c *consumer) describe(ctx context.Context) ([]types.Shard, error) {
	var shards []types.Shard
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(c.streamArn)}
	for {
		out, err := c.r.opts.Streams.DescribeStream(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe stream: %w", err)
		}
		shards = append(shards, out.StreamDescription.Shards...)
		if out.StreamDescription.LastEvaluatedShardId == nil {
			break
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
	parent := map[string]string{}
	for _, sh := range shards {
		parent[aws.ToString(sh.ShardId)] = aws.ToString(sh.ParentShardId)
	}
	depth := func(id string) int {
		d := 0
		for p := parent[id]; p != "" && d < len(shards); p = parent[p] {
			d++
		}
		return d
	}
	sort.SliceStable(shards, func(i, j int) bool {
		a, b := aws.ToString(shards[i].ShardId), aws.ToString(shards[j].ShardId)
		if da, db := depth(a), depth(b); da != db {
			return da < db
		}
		return a < b
	})
	return shards, nil
}

// shutdownGrace is how long a stopping runner lets a batch in flight run on.
const shutdownGrace = 5 * time.Second

// deliver invokes the function with the records. n is how many leading records were
// processed (all of them on success); whole reports a function error rather than reported
// item failures.
func (c *consumer) deliver(ctx context.Context, recs []types.Record) (n int, whole bool, err error) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(recs))}
	for i, r := range recs {
		region := aws.ToString(r.AwsRegion)
		if region == "" || region == "ddblocal" {
			region = Region
		}
		if ev.Records[i], err = streamRecordToEvent(r, c.streamArn, region); err != nil {
			return 0, true, fmt.Errorf("record %s: %w", seqOf(r), err)
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return 0, true, err
	}
	// A batch in flight finishes when the runner stops, as Lambda lets an invocation run on
	// when its event source goes away (else every stop logs the handler's cancelled writes
	// and redelivers the batch); shutdownGrace bounds the wait.
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
	defer stop()
	out, err := c.r.opts.Invoker.Invoke(ictx, c.fn, payload)
	if err != nil {
		return 0, true, err
	}
	if !c.ev.ReportBatchItemFailures() {
		return len(recs), false, nil
	}
	out = bytes.TrimSpace(out)
	if len(out) == 0 || string(out) == "null" {
		return len(recs), false, nil
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		// Lambda treats an unreadable response as a failure of the whole batch.
		return 0, true, fmt.Errorf("invalid batch response %q: %w", truncate(out, 200), err)
	}
	if len(resp.BatchItemFailures) == 0 {
		return len(recs), false, nil
	}
	first := len(recs)
	for _, f := range resp.BatchItemFailures {
		idx := -1
		for i, r := range recs {
			if seqOf(r) == f.ItemIdentifier {
				idx = i
				break
			}
		}
		if idx < 0 {
			// So does Lambda with an empty or unknown itemIdentifier.
			return 0, true, fmt.Errorf("batchItemFailures names %q, which is not in the batch", f.ItemIdentifier)
		}
		first = min(first, idx)
	}
	return first, false, fmt.Errorf("%d of %d records reported as failed", len(resp.BatchItemFailures), len(recs))
}

// recordTime is when the record was written (DynamoDB Local has second precision).
func recordTime(r types.Record) time.Time {
	if r.Dynamodb == nil || r.Dynamodb.ApproximateCreationDateTime == nil {
		return time.Time{}
	}
	return *r.Dynamodb.ApproximateCreationDateTime
}

func seqOf(r types.Record) string {
	if r.Dynamodb == nil {
		return ""
	}
	return aws.ToString(r.Dynamodb.SequenceNumber)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
