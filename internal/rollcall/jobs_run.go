package rollcall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Running a job: a chunk from the queue goes through bulk enroll, its results and counts are
// recorded once, and the last chunk finishes the job. The job item's final state is all the
// worker writes about the end: the mailer sends the creator's job_finished mail from that
// write's stream record (docs/architecture.md).

// onLockedKey carries a function that bulk enroll calls each time it has taken its courses'
// leases (see withOnLocked).
type onLockedKey struct{}

// withOnLocked has runBulkRequest call f once it holds the leases of the courses it writes:
// work meant to overlap the writes, not the wait for the lease.
func withOnLocked(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, onLockedKey{}, f)
}

// onLocked calls the function withOnLocked set, if any.
func onLocked(ctx context.Context) {
	if f, ok := ctx.Value(onLockedKey{}).(func()); ok {
		f()
	}
}

// ErrJobChunkRetry asks for the chunk to be delivered again later.
var ErrJobChunkRetry = errors.New("jobs: chunk must be retried")

// RunChunk runs one chunk of a job, once: a chunk whose results are recorded, or of a job
// that is cancelled or gone, is skipped; otherwise its rows run through bulk enroll and the
// results and counts are recorded in one conditional write, so a redelivered chunk counts
// once (and, its writes being no-ops the second time, mails nobody twice). An error means the
// chunk must come back (an outage); row problems are results, never errors.
func (s *JobService) RunChunk(ctx context.Context, c JobChunk) error {
	j, err := s.Jobs.GetJob(ctx, c.JobID)
	if err != nil {
		return unavailable("jobs: read job", err)
	}
	if j == nil || JobFinal(j.State) {
		return nil // cancelled (or failed, or gone): what has not run does not run
	}
	done, err := s.Jobs.ChunkDone(ctx, c.JobID, c.Index)
	if err != nil {
		return unavailable("jobs: read chunk", err)
	}
	owner := NewJobID()
	if !done {
		until := s.now().Add(2 * time.Minute)
		if dl, ok := ctx.Deadline(); ok {
			until = s.now().Add(time.Until(dl) + 5*time.Second)
		}
		claimed, err := s.Jobs.ClaimChunk(ctx, c.JobID, c.Index, owner, s.now(), until)
		if err != nil {
			return unavailable("jobs: claim chunk", err)
		}
		if !claimed {
			return ErrJobChunkRetry // another run has it; this delivery comes back later
		}
		// A run whose claim lapsed may have recorded the chunk just before we claimed it.
		if done, err = s.Jobs.ChunkDone(ctx, c.JobID, c.Index); err != nil {
			return unavailable("jobs: read chunk", err)
		}
	}
	if !done {
		if j.State == JobQueued {
			if err := s.Jobs.StartJob(ctx, j.ID, s.now()); err != nil {
				return unavailable("jobs: start job", err)
			}
		}
		// The retirement pointers go in while the rows are written (they depend on the
		// identifiers only), so that they cost the chunk little time of its own; the results
		// wait for them. They start once the chunk holds its course (or, if it never takes
		// the lease, once its rows are done): chunks queued on a course would otherwise all
		// write pointers while they wait, competing with the holder's writes.
		refs := make(chan error, 1)
		var startRefs sync.Once
		begin := make(chan struct{})
		startPointers := func() { startRefs.Do(func() { close(begin) }) }
		go func() {
			select {
			case <-begin:
			case <-ctx.Done():
				refs <- ctx.Err()
				return
			}
			ids := make([]string, len(c.Rows))
			for i, r := range c.Rows {
				ids[i] = r.Identifier
			}
			refs <- s.Jobs.WriteJobRefs(ctx, c.JobID, c.Index, ids)
		}()
		results, err := s.runRows(withOnLocked(ctx, startPointers), j, c.Rows)
		startPointers()
		if refErr := <-refs; err == nil && refErr != nil {
			err = unavailable("jobs: write retirement pointers", refErr)
		}
		if err != nil {
			if rerr := s.Jobs.ReleaseChunk(context.WithoutCancel(ctx), c.JobID, c.Index, owner); rerr != nil {
				s.log().WarnContext(ctx, "jobs: release chunk claim", "job_id", c.JobID, "chunk", c.Index, "error", rerr)
			}
			return err
		}
		var counts JobCounts
		for _, r := range results {
			counts.Processed++
			switch {
			case r.Error != "":
				counts.Errors++
			case r.InvalidIdentifier:
				counts.Invalid++
			case r.Changed():
				counts.Changed++
			default:
				counts.Unchanged++
			}
		}
		if _, err := s.Jobs.RecordChunk(ctx, c.JobID, c.Index, results, counts); err != nil {
			return unavailable("jobs: record chunk", err)
		}
		s.record(ctx, map[string]float64{"JobRowsProcessed": float64(counts.Processed), "EnrollmentsChanged": float64(counts.Changed)})
	}
	_, err = s.finish(ctx, c.JobID)
	return err
}

// finish ends a job whose chunks are all recorded (one writer wins).
func (s *JobService) finish(ctx context.Context, id string) (*Job, error) {
	j, err := s.Jobs.GetJob(ctx, id)
	if err != nil || j == nil {
		return j, unavailableOrNil("jobs: read job", err)
	}
	if !JobFinal(j.State) && j.ChunksDone >= j.Chunks {
		state := JobSucceeded
		if j.Counts.Errors > 0 {
			state = JobPartiallySucceeded
		}
		if _, err := s.Jobs.FinishJob(ctx, id, state, s.now()); err != nil {
			return nil, unavailable("jobs: finish job", err)
		}
		if j, err = s.Jobs.GetJob(ctx, id); err != nil {
			return nil, unavailable("jobs: read job", err)
		}
	}
	return j, nil
}

func unavailableOrNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return unavailable(op, err)
}

// runRows runs a chunk's rows: consecutive runs of rows with the same course, action and
// cohort (a roster file's usual order makes them long) become one bulk request each.
func (s *JobService) runRows(ctx context.Context, j *Job, rows []JobRow) ([]RowResult, error) {
	actor := Actor{Username: j.CreatedBy, Email: j.CreatorEm, Staff: j.Staff}
	results := make([]RowResult, len(rows))
	var names []string
	for _, r := range rows {
		if r.Err == "" {
			names = append(names, r.CourseID)
		}
	}
	courses, err := s.Store.GetCourses(ctx, dedupe(names))
	if err != nil {
		return nil, unavailable("jobs: read courses", err)
	}
	type groupKey struct{ course, action, cohort string }
	groups := map[groupKey][]int{}
	var order []groupKey
	for i, r := range rows {
		results[i] = RowResult{Row: r.Row, CourseID: r.CourseID, Identifier: r.Identifier}
		if r.Err != "" {
			results[i].Error = r.Err
			continue
		}
		c := courses[r.CourseID]
		switch {
		case c == nil:
			results[i].Error = "Course not found: " + r.CourseID
			continue
		case !actor.Staff && !c.IsAdmin(actor.Username):
			results[i].Error = "You do not have permission to enroll into " + r.CourseID + "."
			continue
		}
		k := groupKey{r.CourseID, r.Action, r.Cohort}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		idx := groups[k]
		req := &BulkRequest{Courses: []string{k.course}, Action: k.action, AutoEnroll: j.AutoEnroll,
			EmailStudents: j.EmailStudents, Reason: j.Reason, Source: SourceJob}
		if k.action == "enroll" {
			req.Role, req.Mode, req.EndAt, req.InviteRegistered = j.Role, j.Mode, j.EndAt, j.InviteRegistered
		}
		if k.cohort != "" {
			req.Cohorts = []string{k.cohort}
		}
		for _, i := range idx {
			req.Identifiers = append(req.Identifiers, rows[i].Identifier)
		}
		res, err := s.runBulkRequest(ctx, actor, req, courses, j.DryRun)
		if err != nil {
			var ve *ValidationError
			var qe *QuotaError
			switch {
			case errors.As(err, &ve):
				for _, i := range idx {
					results[i].Error = ve.Error()
				}
				continue
			case errors.As(err, &qe):
				for _, i := range idx {
					results[i].Error = qe.Detail
				}
				continue
			case errors.Is(err, ErrNotFound):
				for _, i := range idx {
					results[i].Error = "Course not found: " + k.course
				}
				continue
			case errors.Is(err, ErrForbidden):
				for _, i := range idx {
					results[i].Error = "You do not have permission to enroll into " + k.course + "."
				}
				continue
			}
			return nil, err
		}
		got := res.Courses[k.course].Results
		for n, i := range idx {
			br := got[n]
			r := &results[i]
			switch {
			case br.InvalidIdentifier:
				r.InvalidIdentifier = true
			case br.Error:
				r.Error = "The enrollment could not be written; run the row again."
			default:
				r.Before, r.After, r.WithCohort, r.WithRole, r.Wrote = br.Before, br.After, br.WithCohort, br.WithRole, br.Changed
			}
		}
	}
	return results, nil
}

// chunkMessage is a chunk as a queue message body: rows as arrays (row, course, identifier,
// action, cohort, error) to stay well under the queue's 256 KiB.
type chunkMessage struct {
	JobID string      `json:"job_id"`
	Index int         `json:"chunk"`
	Rows  [][6]string `json:"rows"`
}

// EncodeChunk is a chunk's queue message body.
func EncodeChunk(c JobChunk) (string, error) {
	m := chunkMessage{JobID: c.JobID, Index: c.Index, Rows: make([][6]string, len(c.Rows))}
	for i, r := range c.Rows {
		m.Rows[i] = [6]string{strconv.Itoa(r.Row), r.CourseID, r.Identifier, r.Action, r.Cohort, r.Err}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// DecodeChunk reads a chunk's queue message body.
func DecodeChunk(body string) (JobChunk, error) {
	var m chunkMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return JobChunk{}, fmt.Errorf("chunk message: %w", err)
	}
	if !ValidJobID(m.JobID) || m.Index < 0 {
		return JobChunk{}, fmt.Errorf("chunk message: bad job id or index")
	}
	c := JobChunk{JobID: m.JobID, Index: m.Index, Rows: make([]JobRow, len(m.Rows))}
	for i, r := range m.Rows {
		n, err := strconv.Atoi(r[0])
		if err != nil {
			return JobChunk{}, fmt.Errorf("chunk message: bad row number %q", r[0])
		}
		c.Rows[i] = JobRow{Row: n, CourseID: r[1], Identifier: r[2], Action: r[3], Cohort: r[4], Err: r[5]}
	}
	return c, nil
}
