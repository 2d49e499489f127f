package rollcall

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Roster jobs: a bulk enrollment too large for one request runs in the background. The job
// is split into chunks; each chunk goes through a queue to a worker that runs it through
// runBulkRequest, the code of synchronous bulk enroll, and records its rows' results once.

// JobsPath is where jobs are created (the synchronous 413 names it).
const JobsPath = "/api/bulk_enroll/v1/jobs"

// Job states.
const (
	JobQueued             = "queued"
	JobRunning            = "running"
	JobSucceeded          = "succeeded"
	JobPartiallySucceeded = "partially_succeeded"
	JobFailed             = "failed"
	JobCancelled          = "cancelled"
)

// JobFinal says whether a job in this state will change no more.
func JobFinal(state string) bool {
	return state == JobSucceeded || state == JobPartiallySucceeded || state == JobFailed || state == JobCancelled
}

// Chunk bounds. A chunk is one queue message (SQS takes at most 256 KiB), so it closes at
// ChunkRows rows or ChunkBytes of rows, whichever comes first. 500 rows keep a worker's
// invocation to a second or two (one bulk request of 500 pairs: 20 parallel BatchWriteItem
// calls of 25 under one lease), far from its timeout, while making 200 messages of a
// 100,000-row job: few enough that the job item's counters (one update per chunk) are never
// a hot key.
//
// The first chunk is smaller (FirstChunkRows) and gets a head start (FirstChunkLead: the other
// chunks become visible on the queue that much later), so that a job shows progress, and its
// first row results, within a second or so whatever its size: running alone, 50 rows take a
// few hundred milliseconds, where a 500-row chunk competing with seven others took 2-4 s.
// The head start delays the rest of the job by at most that second.
const (
	ChunkRows      = 500
	ChunkBytes     = 192 << 10
	FirstChunkRows = 50
	FirstChunkLead = time.Second
)

// JobCounts are a job's row counts.
type JobCounts struct {
	Total     int `json:"total"`
	Processed int `json:"processed"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Invalid   int `json:"invalid"`
	Errors    int `json:"errors"`
}

// Add adds o's processed rows to c.
func (c *JobCounts) Add(o JobCounts) {
	c.Processed += o.Processed
	c.Changed += o.Changed
	c.Unchanged += o.Unchanged
	c.Invalid += o.Invalid
	c.Errors += o.Errors
}

// Job is a roster job.
type Job struct {
	ID         string
	State      string
	DryRun     bool
	Format     string
	CreatedBy  string // username
	CreatorEm  string // the creator's email (the job_finished mail), "" if the token had none
	Staff      bool   // the creator was staff when the job was made
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	Counts     JobCounts
	Chunks     int // how many chunks the job was split into
	ChunksDone int // how many have recorded their results
	// The bulk options every row runs with.
	AutoEnroll    bool
	EmailStudents bool
	Reason        string
	// The lifecycle options of its enroll rows, as bulk enroll takes them ("" / zero: not
	// given). A duration_days is turned into EndAt when the job is made.
	Role, Mode       string
	EndAt            time.Time
	InviteRegistered bool
	// Mailed: the job_finished mail was sent (the mailer sets it).
	Mailed bool
}

// JobChunk is one queue message: a slice of a job's rows.
type JobChunk struct {
	JobID string   `json:"job_id"`
	Index int      `json:"chunk"`
	Rows  []JobRow `json:"-"`
}

// SendDelay is how long the queue keeps the chunk invisible after it is sent: every chunk but
// the first waits for the first's head start.
func (c JobChunk) SendDelay() time.Duration {
	if c.Index == 0 {
		return 0
	}
	return FirstChunkLead
}

// RowResult is the outcome of one row.
type RowResult struct {
	Row               int
	CourseID          string
	Identifier        string
	Before, After     Snapshot
	WithCohort        bool
	WithRole          bool // the job named a role: its states report "role"
	Wrote             bool // the row changed its enrollment (a role, mode or end date too)
	InvalidIdentifier bool
	Error             string
}

// Changed says whether the row changed an enrollment.
func (r RowResult) Changed() bool {
	if r.Error != "" || r.InvalidIdentifier {
		return false
	}
	return r.Wrote || !r.Before.same(r.After)
}

// JobStore keeps jobs, their chunks' results and the per-user job lists.
type JobStore interface {
	// CreateJob writes a new job and its list entries.
	CreateJob(ctx context.Context, j *Job) error
	// GetJob reads a job (strongly consistent); nil if there is none.
	GetJob(ctx context.Context, id string) (*Job, error)
	// ListJobs lists jobs newest first: those of owner, or every job for "".
	ListJobs(ctx context.Context, owner string, after string, limit int) (jobs []*Job, next string, err error)
	// StartJob moves a queued job to running (no-op otherwise).
	StartJob(ctx context.Context, id string, at time.Time) error
	// ChunkDone says whether a chunk's results are recorded.
	ChunkDone(ctx context.Context, jobID string, index int) (bool, error)
	// ClaimChunk takes a chunk for one run until a time (a conditional write): false while
	// another run's claim is still live. It keeps two deliveries of one chunk from running at
	// once (a message comes back while its first run is still at work).
	ClaimChunk(ctx context.Context, jobID string, index int, owner string, now, until time.Time) (bool, error)
	// ReleaseChunk gives up owner's claim (a run that failed), so the next delivery runs.
	ReleaseChunk(ctx context.Context, jobID string, index int, owner string) error
	// WriteJobRefs writes a chunk's per-person pointers (one per identifier that could name a
	// person), which let retirement find the chunk's results by key. A chunk's results are
	// recorded only after its pointers are written.
	WriteJobRefs(ctx context.Context, jobID string, index int, identifiers []string) error
	// RecordChunk stores a chunk's results and adds its counts to the job, both or neither,
	// and only the first time (a conditional write): recorded is false when it was already.
	RecordChunk(ctx context.Context, jobID string, index int, results []RowResult, counts JobCounts) (recorded bool, err error)
	// FinishJob sets a final state if the job is still queued or running and every chunk is
	// done (or, for JobCancelled and JobFailed, regardless of chunks); won is false when
	// another writer did it first.
	FinishJob(ctx context.Context, id, state string, at time.Time) (won bool, err error)
	// JobResults reads recorded chunks in order from chunk `from` on, at most limit chunks.
	JobResults(ctx context.Context, jobID string, from, limit int) ([]ChunkResults, error)
}

// ChunkResults are one recorded chunk's results.
type ChunkResults struct {
	Index   int
	Results []RowResult
}

// JobQueue sends chunks to the workers.
type JobQueue interface {
	SendChunks(ctx context.Context, chunks []JobChunk) error
}

// Uploads holds roster files uploaded ahead of a job.
type Uploads interface {
	// NewUpload returns an id and a presigned PUT URL for a new upload, valid until expires.
	NewUpload(ctx context.Context, owner string, ttl time.Duration) (id, url string, expires time.Time, err error)
	// OpenUpload reads an upload of owner; ErrUploadMissing if it never arrived.
	OpenUpload(ctx context.Context, owner, id string) (io.ReadCloser, error)
	// DeleteUpload removes an upload (no error if it is gone already).
	DeleteUpload(ctx context.Context, owner, id string) error
}

// ErrUploadMissing means an upload id names nothing that was uploaded.
var ErrUploadMissing = errors.New("upload not found")

// JobService runs roster jobs on top of the bulk enroll service.
type JobService struct {
	*Service
	Jobs    JobStore
	Queue   JobQueue
	Uploads Uploads
}

// NewJobID returns a random job id (32 hex digits).
func NewJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidJobID says whether s can be a job id (checked before it reaches a key).
func ValidJobID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// GetJob returns a job to its creator or to staff (404 to anyone else, whether it exists or not).
func (s *JobService) GetJob(ctx context.Context, actor Actor, id string) (*Job, error) {
	if !ValidJobID(id) {
		return nil, ErrNotFound
	}
	j, err := s.Jobs.GetJob(ctx, id)
	if err != nil {
		return nil, unavailable("jobs: read job", err)
	}
	if j == nil || (!actor.Staff && !strings.EqualFold(j.CreatedBy, actor.Username)) {
		return nil, ErrNotFound
	}
	return j, nil
}

// JobPage is a page of jobs.
type JobPage struct {
	Items []*Job
	Next  string
}

// ListJobs lists the caller's jobs (staff: every job), newest first.
func (s *JobService) ListJobs(ctx context.Context, actor Actor, pageSize, cursor string) (*JobPage, error) {
	pv := &ValidationError{}
	limit := parsePageSize(pageSize, pv)
	if err := pv.OrNil(); err != nil {
		return nil, err
	}
	var err error
	owner := strings.ToLower(actor.Username)
	if actor.Staff {
		owner = ""
	}
	scope := ListScope("jobs", owner)
	after := ""
	if cursor != "" {
		if after, err = s.openJobCursor(scope, cursor); err != nil {
			return nil, FieldError("cursor", "Invalid cursor.")
		}
	}
	jobs, next, err := s.Jobs.ListJobs(ctx, owner, after, limit)
	if err != nil {
		return nil, unavailable("jobs: list", err)
	}
	p := &JobPage{Items: jobs}
	if next != "" {
		p.Next = s.sealJobCursor(scope, next)
	}
	return p, nil
}

// CancelJob stops what has not run: the job becomes cancelled, and workers skip its chunks
// that have not started (a chunk already running finishes and is counted).
func (s *JobService) CancelJob(ctx context.Context, actor Actor, id string) (*Job, error) {
	j, err := s.GetJob(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if !JobFinal(j.State) {
		if _, err := s.Jobs.FinishJob(ctx, id, JobCancelled, s.now()); err != nil {
			return nil, unavailable("jobs: cancel", err)
		}
	}
	if j, err = s.Jobs.GetJob(ctx, id); err != nil {
		return nil, unavailable("jobs: read job", err)
	}
	return j, nil
}

// ResultPage is a page of row results.
type ResultPage struct {
	Items []RowResult
	Next  string
}

// JobResults returns a page of a job's row results in row order of the chunks recorded so far.
func (s *JobService) JobResults(ctx context.Context, actor Actor, id, pageSize, cursor string) (*ResultPage, error) {
	if _, err := s.GetJob(ctx, actor, id); err != nil {
		return nil, err
	}
	pv := &ValidationError{}
	limit := parsePageSize(pageSize, pv)
	if err := pv.OrNil(); err != nil {
		return nil, err
	}
	scope := ListScope("job-results", id)
	chunk, offset := 0, 0
	if cursor != "" {
		pos, err := s.openJobCursor(scope, cursor)
		if err != nil {
			return nil, FieldError("cursor", "Invalid cursor.")
		}
		c, o, ok := strings.Cut(pos, ":")
		if chunk, err = strconv.Atoi(c); !ok || err != nil {
			return nil, FieldError("cursor", "Invalid cursor.")
		}
		if offset, err = strconv.Atoi(o); err != nil {
			return nil, FieldError("cursor", "Invalid cursor.")
		}
	}
	page := &ResultPage{}
	for len(page.Items) < limit {
		crs, err := s.Jobs.JobResults(ctx, id, chunk, 4)
		if err != nil {
			return nil, unavailable("jobs: read results", err)
		}
		if len(crs) == 0 {
			return page, nil
		}
		for _, cr := range crs {
			if cr.Index != chunk {
				// A chunk not recorded yet: the results so far end before it.
				return page, nil
			}
			rest := cr.Results[min(offset, len(cr.Results)):]
			take := min(len(rest), limit-len(page.Items))
			page.Items = append(page.Items, rest[:take]...)
			if take < len(rest) {
				page.Next = s.sealJobCursor(scope, fmt.Sprintf("%d:%d", chunk, offset+take))
				return page, nil
			}
			chunk, offset = chunk+1, 0
		}
		if len(page.Items) == limit {
			if more, err := s.Jobs.JobResults(ctx, id, chunk, 1); err == nil && len(more) > 0 && more[0].Index == chunk {
				page.Next = s.sealJobCursor(scope, fmt.Sprintf("%d:0", chunk))
			}
		}
	}
	return page, nil
}

// Job cursors: a position (a job list key, or chunk:offset of the results) authenticated
// with the list cursor key and bound to its list, so a tampered cursor is a 400.
func (s *JobService) sealJobCursor(scope, pos string) string {
	return cursorEncoding.EncodeToString(append([]byte(pos), jobCursorTag(CursorKey(s.Keys.Current.Secret), scope, pos)...))
}

func (s *JobService) openJobCursor(scope, c string) (string, error) {
	raw, err := cursorEncoding.DecodeString(c)
	if err != nil || len(raw) <= cursorTagLen || len(raw) > 512 {
		return "", ErrInvalidCursor
	}
	pos, tag := string(raw[:len(raw)-cursorTagLen]), raw[len(raw)-cursorTagLen:]
	for _, k := range append([]Key{s.Keys.Current}, s.Keys.Previous...) {
		if len(k.Secret) > 0 && hmac.Equal(tag, jobCursorTag(CursorKey(k.Secret), scope, pos)) {
			return pos, nil
		}
	}
	return "", ErrInvalidCursor
}

func jobCursorTag(key []byte, scope, pos string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ListScope("job-cursor", scope, pos)))
	return m.Sum(nil)[:cursorTagLen]
}
