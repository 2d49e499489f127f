package httpapi

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// MaxInlineRosterBytes bounds a roster sent in the request itself; larger files go through
// an upload.
const MaxInlineRosterBytes = 5 << 20

// UploadTTL is how long an upload URL is valid.
const UploadTTL = 15 * time.Minute

type bodyLimitKey struct{}

// bodyLimit is the request's body limit: 1 MiB, or what a route set (the jobs route allows
// an inline roster).
func bodyLimit(r *http.Request) int64 {
	if n, ok := r.Context().Value(bodyLimitKey{}).(int64); ok {
		return n
	}
	return rollcall.MaxBulkBodyBytes
}

func withBodyLimit(n int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, n)))
	}
}

// JobsAPI is the HTTP adapter of roster jobs.
type JobsAPI struct {
	*API
	Jobs *rollcall.JobService
}

// JobOps are the operations of JobsFunction, by template.yaml event name.
func (a *JobsAPI) JobOps() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"CreateJob":    withBodyLimit(MaxInlineRosterBytes, a.authed(a.idempotent(a.createJob))),
		"ListJobs":     a.authed(a.listJobs),
		"GetJob":       a.authed(a.getJob),
		"CancelJob":    a.authed(a.cancelJob),
		"JobResults":   a.authed(a.jobResults),
		"CreateUpload": a.authed(a.createUpload),
	}
}

// JobResource is a job as the API shows it.
type JobResource struct {
	ID         string             `json:"id"`
	State      string             `json:"state"`
	DryRun     bool               `json:"dry_run"`
	Format     string             `json:"format"`
	CreatedBy  string             `json:"created_by"`
	CreatedAt  string             `json:"created_at"`
	StartedAt  *string            `json:"started_at"`
	FinishedAt *string            `json:"finished_at"`
	Counts     rollcall.JobCounts `json:"counts"`
	Links      []JobLink          `json:"links"`
}

// JobLink is a related resource of a job.
type JobLink struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

// JobPath is a job's path.
func JobPath(id string) string { return rollcall.JobsPath + "/" + id }

func (a *JobsAPI) resource(r *http.Request, j *rollcall.Job) JobResource {
	base := a.baseURL(r)
	return JobResource{ID: j.ID, State: j.State, DryRun: j.DryRun, Format: j.Format, CreatedBy: j.CreatedBy,
		CreatedAt: rfc3339(j.CreatedAt), StartedAt: optTime(j.StartedAt), FinishedAt: optTime(j.FinishedAt), Counts: j.Counts,
		Links: []JobLink{{Rel: "self", Href: base + JobPath(j.ID)}, {Rel: "results", Href: base + JobPath(j.ID) + "/results"}}}
}

// jobFieldNames are the fields a job takes from the query string too.
var jobFieldNames = []string{"format", "courses", "action", "auto_enroll", "email_students", "reason", "dry_run", "cohorts", "upload_id",
	"role", "mode", "end_at", "duration_days", "invite_registered"}

// createJob is POST /api/bulk_enroll/v1/jobs: the bulk enroll fields (JSON or form), a CSV
// body (text/csv) or a multipart field "file", or an upload_id; options in the query or body.
func (a *JobsAPI) createJob(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	limitBody(w, r)
	in, err := decodeJobInput(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = &rollcall.TooLargeError{Detail: fmt.Sprintf("A roster sent inline may be at most %d MiB; upload larger files first (POST /api/bulk_enroll/v1/uploads).", MaxInlineRosterBytes>>20)}
		}
		writeError(w, r, err)
		return
	}
	j, err := a.Jobs.CreateJob(r.Context(), actor, in)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = &rollcall.TooLargeError{Detail: fmt.Sprintf("A roster sent inline may be at most %d MiB; upload larger files first (POST /api/bulk_enroll/v1/uploads).", MaxInlineRosterBytes>>20)}
		}
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", JobPath(j.ID))
	writeJSON(w, http.StatusAccepted, a.resource(r, j))
}

func decodeJobInput(r *http.Request) (rollcall.JobInput, error) {
	q, err := parseQuery(r, jobFieldNames...)
	if err != nil {
		return rollcall.JobInput{}, err
	}
	var in rollcall.JobInput
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "text/csv", "application/csv", "text/plain":
		in.Fields = rollcall.Fields{}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return in, err
		}
		in.File = strings.NewReader(string(b))
	case "multipart/form-data":
		in.Fields = rollcall.Fields{}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for parts := 0; ; parts++ {
			if parts > 100 {
				return in, &parseError{msg: "Malformed request body: too many multipart parts (at most 100)."}
			}
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return in, err
				}
				return in, &parseError{msg: "Malformed request body: " + err.Error()}
			}
			b, err := io.ReadAll(p)
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return in, err
				}
				return in, &parseError{msg: "Malformed request body: " + err.Error()}
			}
			name := strings.TrimSuffix(p.FormName(), "[]")
			if name == "file" {
				if in.File != nil {
					return in, rollcall.FieldError("file", "Expected a single file, not a list.")
				}
				in.File = strings.NewReader(string(b))
				continue
			}
			fd := in.Fields[name]
			fd.Present = true
			fd.Values = append(fd.Values, string(b))
			in.Fields[name] = fd
		}
	default:
		f, err := DecodeFields(r)
		if err != nil {
			return in, err
		}
		in.Fields = f
	}
	for _, name := range jobFieldNames {
		if _, ok := in.Fields[name]; !ok && len(q[name]) > 0 {
			in.Fields[name] = rollcall.Field{Present: true, Values: q[name]}
		}
	}
	if u := in.Fields["upload_id"]; u.Present {
		if in.File != nil {
			return in, rollcall.NonFieldError("Send either a file or an upload_id, not both.")
		}
		if len(u.Values) != 1 || u.List {
			return in, rollcall.FieldError("upload_id", "Expected a single value, not a list.")
		}
		in.UploadID = u.Values[0]
	}
	return in, nil
}

// getJob is GET /api/bulk_enroll/v1/jobs/{id}.
func (a *JobsAPI) getJob(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	j, err := a.Jobs.GetJob(r.Context(), actor, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.resource(r, j))
}

// cancelJob is DELETE /api/bulk_enroll/v1/jobs/{id}.
func (a *JobsAPI) cancelJob(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	j, err := a.Jobs.CancelJob(r.Context(), actor, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.resource(r, j))
}

// listJobs is GET /api/bulk_enroll/v1/jobs: the caller's jobs (staff: all), newest first.
func (a *JobsAPI) listJobs(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q, err := parseQuery(r, "page_size", "cursor")
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := a.Jobs.ListJobs(r.Context(), actor, listParam(q, "page_size"), listParam(q, "cursor"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	items := make([]JobResource, len(page.Items))
	for i, j := range page.Items {
		items[i] = a.resource(r, j)
	}
	a.writeList(w, r, page.Next, items)
}

// jobResults is GET /api/bulk_enroll/v1/jobs/{id}/results[?format=csv].
func (a *JobsAPI) jobResults(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q, err := parseQuery(r, "page_size", "cursor", "format")
	if err != nil {
		writeError(w, r, err)
		return
	}
	format := listParam(q, "format")
	if format != "" && format != "json" && format != "csv" {
		writeError(w, r, rollcall.FieldError("format", fmt.Sprintf("%q is not a valid choice.", format)))
		return
	}
	pageSize := listParam(q, "page_size")
	if format == "csv" && pageSize == "" {
		pageSize = strconv.Itoa(rollcall.MaxPageSize) // a download: the largest pages
	}
	page, err := a.Jobs.JobResults(r.Context(), actor, r.PathValue("id"), pageSize, listParam(q, "cursor"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if page.Next != "" {
		w.Header().Set("Link", "<"+a.NextURL(r, page.Next)+`>; rel="next"`)
	}
	if format == "csv" {
		writeResultsCSV(w, r.PathValue("id"), page.Items)
		return
	}
	items := make([]any, len(page.Items))
	for i, res := range page.Items {
		items[i] = RowResultJSON(res)
	}
	writeJSON(w, http.StatusOK, items)
}

// RowResultJSON is a row result's JSON: bulk enroll's result with the row and course.
func RowResultJSON(res rollcall.RowResult) any {
	switch {
	case res.Error != "":
		return struct {
			Row   int    `json:"row"`
			Error string `json:"error"`
		}{res.Row, res.Error}
	case res.InvalidIdentifier:
		return struct {
			Row               int    `json:"row"`
			CourseID          string `json:"course_id"`
			Identifier        string `json:"identifier"`
			InvalidIdentifier bool   `json:"invalidIdentifier"`
		}{res.Row, res.CourseID, res.Identifier, true}
	}
	snap := func(s rollcall.Snapshot) map[string]any {
		m := map[string]any{"enrollment": s.Enrollment, "allowed": s.Allowed, "user": s.User, "auto_enroll": s.AutoEnroll}
		if res.WithCohort {
			m["cohort"] = s.Cohort
		}
		if res.WithRole {
			m["role"] = s.Role
		}
		return m
	}
	return struct {
		Row        int            `json:"row"`
		CourseID   string         `json:"course_id"`
		Identifier string         `json:"identifier"`
		Before     map[string]any `json:"before"`
		After      map[string]any `json:"after"`
	}{res.Row, res.CourseID, res.Identifier, snap(res.Before), snap(res.After)}
}

// ResultsCSVHeader is the header row of a results download.
var ResultsCSVHeader = []string{"row", "course_id", "identifier", "outcome",
	"before_enrollment", "before_allowed", "before_user", "before_auto_enroll", "before_cohort",
	"after_enrollment", "after_allowed", "after_user", "after_auto_enroll", "after_cohort", "error",
	"before_role", "after_role"}

func writeResultsCSV(w http.ResponseWriter, jobID string, rows []rollcall.RowResult) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="job-`+jobID+`-results.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.Write(ResultsCSVHeader)
	b := strconv.FormatBool
	// cell is a cohort's or a role's cell: empty when the job did not name one, or null.
	cell := func(named bool, c *string) string {
		if !named || c == nil {
			return ""
		}
		return *c
	}
	for _, res := range rows {
		rec := make([]string, len(ResultsCSVHeader))
		rec[0], rec[1], rec[2] = strconv.Itoa(res.Row), res.CourseID, res.Identifier
		switch {
		case res.Error != "":
			rec[3], rec[14] = "error", res.Error
		case res.InvalidIdentifier:
			rec[3] = "invalid_identifier"
		default:
			rec[3] = "unchanged"
			if res.Changed() {
				rec[3] = "changed"
			}
			bs, as := res.Before, res.After
			copy(rec[4:9], []string{b(bs.Enrollment), b(bs.Allowed), b(bs.User), b(bs.AutoEnroll), cell(res.WithCohort, bs.Cohort)})
			copy(rec[9:14], []string{b(as.Enrollment), b(as.Allowed), b(as.User), b(as.AutoEnroll), cell(res.WithCohort, as.Cohort)})
			rec[15], rec[16] = cell(res.WithRole, bs.Role), cell(res.WithRole, as.Role)
		}
		for i, v := range rec {
			rec[i] = csvSafe(v)
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a value as a formula (identifiers and cohorts come
// from users): a leading =, +, - or @ gets a quote mark in front.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// createUpload is POST /api/bulk_enroll/v1/uploads: a presigned PUT for a roster file.
func (a *JobsAPI) createUpload(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if a.Jobs.Uploads == nil {
		writeError(w, r, &rollcall.UnavailableError{Detail: "Uploads are not available."})
		return
	}
	id, url, expires, err := a.Jobs.Uploads.NewUpload(r.Context(), actor.Username, UploadTTL)
	if err != nil {
		writeError(w, r, &rollcall.UnavailableError{Detail: "Uploads are not available right now; retry shortly.", Err: err})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]string{"upload_id": id, "upload_url": url, "expires_at": rfc3339(expires)})
}
