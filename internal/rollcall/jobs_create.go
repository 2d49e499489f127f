package rollcall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Making a job: its input is validated as bulk enroll validates a request (plus the file
// formats), the caller must be allowed every course it names, and its rows are cut into
// chunks that go to the queue.

// JobInput is a POST of a job: the fields (bulk enroll's, plus format and dry_run) and,
// for a file, its reader.
type JobInput struct {
	Fields Fields
	File   io.Reader // nil for a job given as fields
	// UploadID names an uploaded file instead.
	UploadID string
}

// CreateJob validates a job, checks the caller may enroll into every course it names,
// records it and queues its chunks.
func (s *JobService) CreateJob(ctx context.Context, actor Actor, in JobInput) (*Job, error) {
	f := in.Fields
	v := &ValidationError{}
	format := JobFormatFields
	if in.File != nil || in.UploadID != "" {
		format = ""
		if fv := f["format"]; fv.Present {
			format = strings.ToLower(single(fv))
		}
		switch format {
		case JobFormatIdentifiers, JobFormatCanvas, JobFormatOneRoster:
		case "":
			v.Add("format", "This field is required with a file (identifiers, canvas or oneroster).")
		default:
			v.Add("format", fmt.Sprintf("%q is not a valid choice.", format))
		}
	} else if fv := f["format"]; fv.Present && single(fv) != "" && single(fv) != JobFormatFields {
		v.Add("file", "This field is required with format "+single(fv)+".")
	}
	opts := struct {
		dryRun, auto, email bool
		reason, action      string
		courses             []string
		life                BulkRequest // role, mode, end_at / duration_days, invite_registered
	}{action: "enroll"}
	for name, dst := range map[string]*bool{"dry_run": &opts.dryRun, "auto_enroll": &opts.auto, "email_students": &opts.email,
		"invite_registered": &opts.life.InviteRegistered} {
		if fv, ok := f[name]; ok && fv.Present {
			b, valid := parseBool(fv)
			if !valid {
				v.Add(name, msgInvalidBoolean)
			}
			*dst = b
		}
	}
	if fv := f["reason"]; fv.Present {
		opts.reason = single(fv)
		if HasControl(opts.reason) {
			v.Add("reason", "Control characters are not allowed.")
		}
	}
	if fv := f["action"]; fv.Present {
		switch a := single(fv); a {
		case "enroll", "unenroll":
			opts.action = a
		default:
			v.Add("action", fmt.Sprintf("%q is not a valid choice.", a))
		}
	}
	if fv := f["courses"]; fv.Present {
		opts.courses = dedupe(splitField(fv, SplitCommaList))
		for _, k := range opts.courses {
			if !ValidCourseKey(k) {
				v.Add("courses", "Course key not valid: "+k)
				break
			}
		}
	}
	if format != JobFormatFields {
		// A file's job takes bulk enroll's lifecycle options beside the file (a job given as
		// fields gets them, with every other field, from ParseBulkRequest below). The rows
		// may each name their action; the options are checked against the request's.
		opts.life.Role = parseChoice(f, "role", ValidRole, v)
		opts.life.Mode = parseChoice(f, "mode", ValidMode, v)
		parseEnd(f, &opts.life, v)
	}
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	if format != JobFormatFields {
		opts.life.Action = opts.action
		if err := checkLifecycleOptions(&opts.life); err != nil {
			return nil, err
		}
	}

	var rows []JobRow
	switch {
	case format == JobFormatFields:
		req, err := ParseBulkRequest(f)
		if err != nil {
			return nil, err
		}
		opts.auto, opts.email, opts.reason = req.AutoEnroll, req.EmailStudents, req.Reason
		opts.life = *req
		for i, ident := range req.Identifiers {
			for j, c := range req.Courses {
				r := JobRow{Row: i*len(req.Courses) + j + 1, CourseID: c, Identifier: ident, Action: req.Action, Cohort: req.CohortFor(j)}
				r.Err = checkRow(r)
				rows = append(rows, r)
			}
		}
	default:
		file := in.File
		if in.UploadID != "" {
			if s.Uploads == nil {
				return nil, FieldError("upload_id", "Uploads are not available.")
			}
			rc, err := s.Uploads.OpenUpload(ctx, actor.Username, in.UploadID)
			if errors.Is(err, ErrUploadMissing) {
				return nil, FieldError("upload_id", "No upload with this id has arrived.")
			}
			if err != nil {
				return nil, unavailable("jobs: open upload", err)
			}
			defer rc.Close()
			file = rc
		}
		var err error
		if rows, err = ParseRoster(format, file, RowDefaults{Courses: opts.courses, Action: opts.action}); err != nil {
			return nil, err
		}
	}
	if len(rows) > MaxJobRows {
		return nil, &TooLargeError{Detail: fmt.Sprintf("A job may have at most %d rows.", MaxJobRows)}
	}

	// Who: staff, or an admin of every course the job names (as bulk enroll).
	var names []string
	for _, r := range rows {
		if r.Err == "" {
			names = append(names, r.CourseID)
		}
	}
	names = dedupe(names)
	courses, err := s.Store.GetCourses(ctx, names)
	if err != nil {
		return nil, unavailable("jobs: read courses", err)
	}
	if !actor.Staff {
		for _, id := range names {
			if c := courses[id]; c == nil || !c.IsAdmin(actor.Username) {
				return nil, ErrForbidden
			}
		}
	}
	if format == JobFormatFields {
		for _, id := range names {
			if courses[id] == nil {
				return nil, ErrNotFound
			}
		}
	}
	// Roles that administer a course are granted by staff only, and every course must offer
	// the mode (a course a row names that does not exist is that row's error).
	life := &BulkRequest{Role: opts.life.Role, Mode: opts.life.Mode}
	for _, id := range names {
		if courses[id] != nil {
			life.Courses = append(life.Courses, id)
		}
	}
	if err := checkRoleAndMode(actor, life, courses); err != nil {
		return nil, err
	}

	now := s.now()
	j := &Job{ID: NewJobID(), State: JobQueued, DryRun: opts.dryRun, Format: format, CreatedBy: actor.Username,
		CreatorEm: actor.Email, Staff: actor.Staff, CreatedAt: now, Counts: JobCounts{Total: len(rows)},
		AutoEnroll: opts.auto, EmailStudents: opts.email, Reason: opts.reason,
		Role: opts.life.Role, Mode: opts.life.Mode, EndAt: opts.life.EndFor(now), InviteRegistered: opts.life.InviteRegistered}
	chunks := SplitJob(j.ID, rows)
	j.Chunks = len(chunks)
	if err := s.Jobs.CreateJob(ctx, j); err != nil {
		return nil, unavailable("jobs: create job", err)
	}
	if len(chunks) == 0 {
		// Nothing to run: the job is done as soon as it exists.
		if _, err := s.finish(ctx, j.ID); err != nil {
			return nil, err
		}
	} else if err := s.Queue.SendChunks(ctx, chunks); err != nil {
		// Chunks that did go out will find the job failed and record nothing.
		if _, ferr := s.Jobs.FinishJob(context.WithoutCancel(ctx), j.ID, JobFailed, s.now()); ferr != nil {
			s.log().ErrorContext(ctx, "jobs: mark failed", "job_id", j.ID, "error", ferr)
		}
		return nil, unavailable("jobs: queue chunks", err)
	}
	if in.UploadID != "" {
		// The rows travel in the chunks now: the file is read once and goes, so a roster
		// (personal data) does not wait out the bucket's 7 days, and its id starts no second
		// job. If the delete fails, the bucket's expiry removes it later.
		if err := s.Uploads.DeleteUpload(context.WithoutCancel(ctx), actor.Username, in.UploadID); err != nil {
			s.log().WarnContext(ctx, "jobs: delete the upload a job has read; it expires with the bucket's lifecycle",
				"job_id", j.ID, "error", err)
		}
	}
	return s.Jobs.GetJob(ctx, j.ID)
}

// SplitJob cuts rows into chunks (ChunkRows rows or ChunkBytes, whichever comes first; the
// first chunk FirstChunkRows).
func SplitJob(jobID string, rows []JobRow) []JobChunk {
	var out []JobChunk
	start, size := 0, 0
	for i, r := range rows {
		n := len(r.CourseID) + len(r.Identifier) + len(r.Cohort) + len(r.Err) + 40
		limit := ChunkRows
		if len(out) == 0 {
			limit = FirstChunkRows
		}
		if i > start && (i-start == limit || size+n > ChunkBytes) {
			out = append(out, JobChunk{JobID: jobID, Index: len(out), Rows: rows[start:i]})
			start, size = i, 0
		}
		size += n
	}
	if start < len(rows) {
		out = append(out, JobChunk{JobID: jobID, Index: len(out), Rows: rows[start:]})
	}
	return out
}
