package e2e

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

// newUpload asks for an upload and checks its shape.
func (h *harness) newUpload(token string) (id, putURL string) {
	h.t.Helper()
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/uploads", token, nil)
	mustStatus(h.t, r, http.StatusCreated)
	u := r.json(h.t)
	id, _ = u["upload_id"].(string)
	putURL, _ = u["upload_url"].(string)
	exp, _ := u["expires_at"].(string)
	at, err := time.Parse(time.RFC3339, exp)
	if id == "" || !strings.HasPrefix(putURL, "http") || err != nil {
		h.t.Fatalf("upload = %v", u)
	}
	if d := at.Sub(h.clock()); d < 14*time.Minute || d > 16*time.Minute {
		h.t.Errorf("expires_at %s is %v after now, want 15 minutes", exp, d)
	}
	return id, putURL
}

// put sends body to a URL with an HTTP PUT, as a client of the presigned URL does.
func put(t testing.TB, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// resultsCSV downloads a job's results as CSV, following the Link to each next page; the
// header row once, then every row.
func (h *harness) resultsCSV(token, jobID string) [][]string {
	h.t.Helper()
	var out [][]string
	next := "/api/bulk_enroll/v1/jobs/" + jobID + "/results?format=csv"
	for pages := 0; next != ""; pages++ {
		if pages > 1000 {
			h.t.Fatal("results CSV: too many pages")
		}
		r := h.do(http.MethodGet, next, token, nil)
		mustStatus(h.t, r, http.StatusOK)
		recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil || len(recs) == 0 {
			h.t.Fatalf("results CSV page %d: %v", pages, err)
		}
		if pages > 0 {
			recs = recs[1:] // each page repeats the header
		}
		out = append(out, recs...)
		next = ""
		if l := r.Header.Get("Link"); l != "" {
			u, _, _ := strings.Cut(strings.TrimPrefix(l, "<"), ">")
			next = u
		}
	}
	return out
}

// A roster over the inline limit goes through an upload: POST uploads gives a presigned PUT,
// the file is PUT to the local S3, the job names the upload_id, runs, and its results come
// back; the upload is consumed (read once, then deleted), so the id cannot start a second job.
func TestJobUploadEndToEnd(t *testing.T) {
	// A chunk of 500 rows takes seconds on a loaded machine: a realistic visibility timeout.
	h := newHarness(t, options{jobs: true, noStreams: true, jobVisibility: time.Minute})
	course := "course-v1:JobOrg+Upload+2026"
	h.putCourse(course, "Upload")
	creator := "uploader-" + strings.Split(strings.Split(testenv.Address("x"), "+")[1], "@")[0]
	token := bearer(t, creator, true)

	// A Canvas file over 5 MiB: 2,000 rows, each with a wide column the parser ignores (the
	// size, not the row count, is what needs an upload; 2,000 rows keep the job quick).
	const rows, deleted = 2000, 10
	pad := strings.Repeat("x", 2700)
	var b strings.Builder
	b.WriteString("course_id,user_id,role,status,section_id,notes\r\n")
	emails := addresses("upload", rows)
	for i, e := range emails {
		status := "active"
		if i >= rows-deleted {
			status = "deleted"
		}
		fmt.Fprintf(&b, "%s,%s,student,%s,,%s\r\n", course, e, status, pad)
	}
	body := b.String()
	if len(body) <= 5<<20 {
		t.Fatalf("the file is %d bytes, want over 5 MiB", len(body))
	}

	// Inline, the same file is too large and the answer names the uploads endpoint.
	r := h.postCSV(token, "format=canvas", body)
	mustStatus(t, r, http.StatusRequestEntityTooLarge)
	if !strings.Contains(string(r.Body), "/api/bulk_enroll/v1/uploads") {
		t.Errorf("413 body = %s", r.Body)
	}

	id, putURL := h.newUpload(token)
	if status, resp := put(t, putURL, body); status != http.StatusOK {
		t.Fatalf("PUT to the presigned URL: %d %s", status, resp)
	}
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{"format": "canvas", "upload_id": id})
	mustStatus(t, r, http.StatusAccepted)
	job := r.json(t)
	jobID := job["id"].(string)
	if job["format"] != "canvas" || counts(job)["total"] != rows {
		t.Errorf("job = %v", job)
	}

	// Read once: the upload is gone from the bucket, and naming it again is a 400.
	s3c := localstack.NewS3Client(h.cfg.Jobs.S3Endpoint)
	_, err := s3c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(h.cfg.Jobs.UploadsBucket),
		Key: aws.String("uploads/" + creator + "/" + id + ".csv")})
	var nf *s3types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("the upload is still in the bucket after the job read it (HeadObject: %v)", err)
	}
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{"format": "canvas", "upload_id": id})
	mustStatus(t, r, http.StatusBadRequest)
	if !strings.HasPrefix(string(r.Body), `{"upload_id":["`) {
		t.Errorf("second job from one upload: %s", r.Body)
	}

	job = h.waitJob(token, jobID, 3*time.Minute)
	want := map[string]int{"total": rows, "processed": rows, "changed": rows - deleted, "unchanged": deleted, "invalid": 0, "errors": 0}
	if got := counts(job); job["state"] != "succeeded" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("job = %v, want succeeded with counts %v", job, want)
	}
	recs := h.resultsCSV(token, jobID)
	if len(recs) != rows+1 {
		t.Fatalf("results CSV: %d records, want %d", len(recs), rows+1)
	}
	if got := strings.Join(recs[1][:4], ","); got != "2,"+course+","+emails[0]+",changed" {
		t.Errorf("first result = %q", got)
	}
	if got := strings.Join(recs[rows][:4], ","); got != fmt.Sprint(rows+1)+","+course+","+emails[rows-1]+",unchanged" {
		t.Errorf("last result = %q", got)
	}
	if !h.enrolled(course, emails[0]) || !h.enrolled(course, emails[rows-deleted-1]) || h.enrolled(course, emails[rows-1]) {
		t.Errorf("enrollments do not match the file")
	}
}

// Uploads that cannot start a job: an id that names nothing (never PUT, so also one whose URL
// expired unused), a malformed id, another user's upload, and a file with a bad header; each
// a 400 in the DRF shape. A PUT without the signature is refused when the local S3 checks it.
func TestJobUploadBadCases(t *testing.T) {
	h := newHarness(t, options{jobs: true, noQueueRunner: true, noStreams: true})
	token := bearer(t, "upload-staff", true)
	course := "course-v1:JobOrg+UploadBad+2026"
	h.putCourse(course, "Upload bad")

	// Asked for, never PUT: the URL would expire with nothing behind it.
	never, _ := h.newUpload(token)
	for _, uid := range []string{never, "0123456789abcdef0123456789abcdef", "../../etc/passwd"} {
		r := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{"format": "canvas", "upload_id": uid})
		mustStatus(t, r, http.StatusBadRequest)
		if !strings.HasPrefix(string(r.Body), `{"upload_id":["`) {
			t.Errorf("upload_id %q: %s", uid, r.Body)
		}
	}

	// Another user's upload is not theirs to use.
	id, putURL := h.newUpload(token)
	if status, resp := put(t, putURL, "course_id,user_id,status\n"+course+","+testenv.Address("u1")+",active\n"); status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, resp)
	}
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", bearer(t, "someone-else", true), map[string]any{"format": "canvas", "upload_id": id})
	mustStatus(t, r, http.StatusBadRequest)
	if !strings.HasPrefix(string(r.Body), `{"upload_id":["`) {
		t.Errorf("another user's upload: %s", r.Body)
	}

	// A bad header in an uploaded file: 400 naming the column, as inline.
	id, putURL = h.newUpload(token)
	if status, resp := put(t, putURL, "course_id,status\n"+course+",active\n"); status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, resp)
	}
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{"format": "canvas", "upload_id": id})
	mustStatus(t, r, http.StatusBadRequest)
	if string(r.Body) != `{"file":["Missing required column: user_id."]}` {
		t.Errorf("bad header: %s", r.Body)
	}

	// A PUT without the presigned query (no signature): S3 answers 403. The local S3
	// (gofakes3) does not check signatures of presigned requests; the test says so rather
	// than pretend.
	_, putURL = h.newUpload(token)
	u, err := url.Parse(putURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("X-Amz-Signature") == "" || u.Query().Get("X-Amz-Expires") != "900" {
		t.Errorf("upload_url is not a presigned PUT valid for 15 minutes: %s", putURL)
	}
	u.RawQuery = ""
	status, resp := put(t, u.String(), "course_id,user_id,status\n")
	if status == http.StatusForbidden {
		t.Logf("the local S3 refused an unsigned PUT: %d", status)
	} else {
		t.Logf("the local S3 does not check signatures: an unsigned PUT got %d %s", status, strings.TrimSpace(resp))
	}
}
