package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

// setUpJobs gives the harness its own job queues and uploads bucket.
func (h *harness) setUpJobs(visibility time.Duration) {
	h.t.Helper()
	if visibility == 0 {
		visibility = 2 * time.Second
	}
	je := testenv.Jobs(h.t)
	_, urls := testenv.NewQueues(h.t, localstack.WithVisibilityTimeout(visibility))
	_, buckets := testenv.NewBuckets(h.t)
	h.queueURLs = urls
	h.cfg.Jobs = app.JobsConfig{QueueURL: urls["JobQueue"], UploadsBucket: buckets["UploadsBucket"],
		SQSEndpoint: je.SQSEndpoint, S3Endpoint: je.S3Endpoint}
}

// crashOnce is a JobWorkerFunction whose first invocation fails, as a worker killed mid-chunk.
func (h *harness) crashOnce(ctx context.Context) (any, error) {
	real, err := functions.Handler(ctx, "JobWorkerFunction", h.functionConfig("JobWorkerFunction"))
	if err != nil {
		return nil, err
	}
	fn := real.(func(context.Context, events.SQSEvent) (events.SQSEventResponse, error))
	var calls atomic.Int32
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if calls.Add(1) == 1 {
			return events.SQSEventResponse{}, errors.New("worker killed")
		}
		return fn(ctx, ev)
	}, nil
}

// postCSV posts a roster file as a text/csv body with the options in the query.
func (h *harness) postCSV(token, query, body string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+"/api/bulk_enroll/v1/jobs?"+query, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// waitJob polls a job until it is final.
func (h *harness) waitJob(token, id string, timeout time.Duration) map[string]any {
	h.t.Helper()
	var job map[string]any
	waitFor(h.t, timeout, "job "+id+" to finish", func() bool {
		r := h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id, token, nil)
		mustStatus(h.t, r, http.StatusOK)
		job = r.json(h.t)
		switch job["state"] {
		case "succeeded", "partially_succeeded", "failed", "cancelled":
			return true
		}
		return false
	})
	return job
}

func counts(job map[string]any) map[string]int {
	out := map[string]int{}
	for k, v := range job["counts"].(map[string]any) {
		out[k] = int(v.(float64))
	}
	return out
}

func (h *harness) results(token, id string) []map[string]any {
	h.t.Helper()
	r := h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id+"/results?page_size=1000", token, nil)
	mustStatus(h.t, r, http.StatusOK)
	var out []map[string]any
	if err := json.Unmarshal(r.Body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// A Canvas enrollments.csv (BOM, CRLF, quoted fields, a blank line, an unknown column, a
// teacher row) through the whole stack: 202 with Location, the worker runs the chunk from
// ElasticMQ, the job ends partially_succeeded (the teacher row is an error), the results
// come back as JSON and as CSV, the invitee gets the invitation mail from the stream and the
// creator the job_finished mail.
func TestJobCanvasCSVEndToEnd(t *testing.T) {
	h := newHarness(t, options{jobs: true})
	course := "course-v1:JobOrg+CSV+2026"
	h.putCourse(course, "Roster import")
	alice := testenv.Address("alice")
	h.createUser("alice-"+strings.Split(strings.Split(alice, "+")[1], "@")[0], alice)
	invitee := testenv.Address("invitee")
	creator := "jobs-" + strings.Split(strings.Split(testenv.Address("x"), "+")[1], "@")[0]
	token := bearer(t, creator, true)

	csvBody := "\ufeffcourse_id,user_id,role,status,section_id,extra\r\n" +
		course + "," + alice + ",student,active,,ignored\r\n" +
		"\r\n" +
		`"` + course + `","` + invitee + `","student","active","",""` + "\r\n" +
		course + ",not an email,student,active,,\r\n" +
		course + ",teacher@example.com,teacher,active,,\r\n" +
		course + ",nobody@example.com,student,deleted,,\r\n"
	r := h.postCSV(token, "format=canvas&email_students=true", csvBody)
	mustStatus(t, r, http.StatusAccepted)
	job := r.json(t)
	id := job["id"].(string)
	if loc := r.Header.Get("Location"); loc != "/api/bulk_enroll/v1/jobs/"+id {
		t.Errorf("Location = %q", loc)
	}
	if job["format"] != "canvas" || job["dry_run"] != false || job["created_by"] != creator || counts(job)["total"] != 5 {
		t.Errorf("job = %v", job)
	}
	job = h.waitJob(token, id, 30*time.Second)
	if job["state"] != "partially_succeeded" {
		t.Fatalf("state = %v, want partially_succeeded (the teacher row)", job["state"])
	}
	want := map[string]int{"total": 5, "processed": 5, "changed": 2, "unchanged": 1, "invalid": 1, "errors": 1}
	if got := counts(job); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	if job["started_at"] == nil || job["finished_at"] == nil {
		t.Errorf("times = %v %v", job["started_at"], job["finished_at"])
	}

	res := h.results(token, id)
	if len(res) != 5 {
		t.Fatalf("results = %v", res)
	}
	// Rows are line numbers of the file: the header is 1, the blank line 3 is skipped.
	if res[0]["row"] != 2.0 || res[0]["identifier"] != alice || res[0]["after"].(map[string]any)["enrollment"] != true {
		t.Errorf("row 2 = %v", res[0])
	}
	if res[1]["row"] != 4.0 || res[1]["after"].(map[string]any)["allowed"] != true {
		t.Errorf("row 4 = %v", res[1])
	}
	if res[2]["row"] != 5.0 || res[2]["invalidIdentifier"] != true {
		t.Errorf("row 5 = %v", res[2])
	}
	if res[3]["row"] != 6.0 || !strings.Contains(fmt.Sprint(res[3]["error"]), "teacher") || len(res[3]) != 2 {
		t.Errorf("row 6 = %v", res[3])
	}
	if res[4]["row"] != 7.0 || res[4]["before"].(map[string]any)["enrollment"] != false {
		t.Errorf("row 7 = %v", res[4])
	}

	// The same results as a CSV download.
	r = h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id+"/results?format=csv", token, nil)
	mustStatus(t, r, http.StatusOK)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || len(recs) != 6 {
		t.Fatalf("CSV = %q (%v)", r.Body, err)
	}
	if strings.Join(recs[1][:4], ",") != "2,"+course+","+alice+",changed" || recs[3][3] != "invalid_identifier" || recs[4][3] != "error" {
		t.Errorf("CSV rows = %q", recs)
	}

	testenv.WaitForEmails(t, invitee, 1, 20*time.Second)
	mails := testenv.WaitForEmails(t, creator+"@staff.example.com", 1, 20*time.Second)
	if !strings.Contains(mails[0].Body.Text, "/api/bulk_enroll/v1/jobs/"+id+"/results") || !strings.Contains(mails[0].Subject, "partially_succeeded") {
		t.Errorf("job_finished mail = %+v", mails[0])
	}

	// The job is listed for its creator; another user sees neither it nor its results.
	r = h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs", token, nil)
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), id) {
		t.Errorf("list = %s", r.Body)
	}
	other := bearer(t, "someone-else", false)
	mustStatus(t, h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id, other, nil), http.StatusNotFound)
	mustStatus(t, h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id+"/results", other, nil), http.StatusNotFound)
}

// Each row gets what synchronous bulk enroll gives it; the repeat of a job is all no-ops.
func TestJobRowsMatchBulkEnrollAndRepeatIsNoOp(t *testing.T) {
	h := newHarness(t, options{jobs: true, noStreams: true})
	course := "course-v1:JobOrg+Same+2026"
	h.putCourse(course, "Same")
	token := bearer(t, "staff", true)
	idents := []string{testenv.Address("a"), "bad@@identifier", testenv.Address("b")}
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{
		"identifiers": idents, "courses": course, "action": "enroll", "auto_enroll": true})
	mustStatus(t, r, http.StatusAccepted)
	job := h.waitJob(token, r.json(t)["id"].(string), 30*time.Second)
	if job["state"] != "succeeded" || counts(job)["changed"] != 2 || counts(job)["invalid"] != 1 {
		t.Fatalf("job = %v", job)
	}
	// The same request synchronously now: every row before = after, as the job's repeat.
	sync := h.bulk("enroll", course, idents, false, true)
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{
		"identifiers": idents, "courses": course, "action": "enroll", "auto_enroll": true})
	mustStatus(t, r, http.StatusAccepted)
	id := r.json(t)["id"].(string)
	job = h.waitJob(token, id, 30*time.Second)
	if c := counts(job); c["changed"] != 0 || c["unchanged"] != 2 || c["invalid"] != 1 || job["state"] != "succeeded" {
		t.Fatalf("repeat = %v", job)
	}
	res := h.results(token, id)
	want := sync["courses"].(map[string]any)[course].(map[string]any)["results"].([]any)
	for i, row := range res {
		w := want[i].(map[string]any)
		delete(row, "row")
		delete(row, "course_id")
		if fmt.Sprint(row) != fmt.Sprint(w) {
			t.Errorf("row %d = %v, bulk enroll gave %v", i+1, row, w)
		}
	}
}

// receiveChunk takes one chunk message off the job queue (the runner is not running).
func (h *harness) receiveChunk() sqstypes.Message {
	h.t.Helper()
	c := localstack.NewSQSClient(h.cfg.Jobs.SQSEndpoint)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(h.queueURLs["JobQueue"]),
			MaxNumberOfMessages: 1, WaitTimeSeconds: 1, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(out.Messages) == 1 {
			return out.Messages[0]
		}
	}
	h.t.Fatal("no chunk on the queue")
	return sqstypes.Message{}
}

// deliver invokes JobWorkerFunction with the message as the event source would.
func (h *harness) deliver(m sqstypes.Message) events.SQSEventResponse {
	h.t.Helper()
	ev, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{localstack.SQSRecord(m, "arn:aws:sqs:us-east-1:123456789012:JobQueue")}})
	out, err := h.stack.Invoker.Invoke(context.Background(), "JobWorkerFunction", ev)
	if err != nil {
		h.t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// A chunk delivered twice (at-least-once delivery) changes, counts and mails once.
func TestJobRedeliveredChunkCountsOnce(t *testing.T) {
	h := newHarness(t, options{jobs: true, noQueueRunner: true})
	course := "course-v1:JobOrg+Twice+2026"
	h.putCourse(course, "Twice")
	token := bearer(t, "staff", true)
	a, b := testenv.Address("twice-a"), testenv.Address("twice-b")
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{
		"identifiers": []string{a, b}, "courses": course, "action": "enroll", "email_students": true})
	mustStatus(t, r, http.StatusAccepted)
	id := r.json(t)["id"].(string)
	m := h.receiveChunk()
	if resp := h.deliver(m); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first delivery failed: %v", resp)
	}
	if resp := h.deliver(m); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("second delivery failed: %v", resp)
	}
	r = h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id, token, nil)
	job := r.json(t)
	if c := counts(job); job["state"] != "succeeded" || c["processed"] != 2 || c["changed"] != 2 || c["unchanged"] != 0 {
		t.Fatalf("job after two deliveries = %v", job)
	}
	testenv.WaitForEmails(t, a, 1, 20*time.Second)
	time.Sleep(time.Second) // a second invitation would be on its way by now
	if n := len(testenv.Emails(t, a)); n != 1 {
		t.Errorf("%d mails to %s, want 1", n, a)
	}
	// The job_finished mail comes from the stream (the mailer). The shared staff address
	// collects other tests' mail too: only count this job's.
	mine := func() int {
		n := 0
		for _, e := range testenv.Emails(t, "staff@staff.example.com") {
			if strings.Contains(e.Body.Text, id) {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); mine() == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := mine(); n != 1 {
		t.Errorf("%d job_finished mails for %s, want 1", n, id)
	}
}

// Cancel stops what has not run: a chunk delivered after the cancel writes nothing.
func TestJobCancelSkipsChunksNotRun(t *testing.T) {
	h := newHarness(t, options{jobs: true, noQueueRunner: true, noStreams: true})
	course := "course-v1:JobOrg+Cancel+2026"
	h.putCourse(course, "Cancel")
	token := bearer(t, "staff", true)
	a := testenv.Address("cancel")
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{"identifiers": a, "courses": course, "action": "enroll"})
	mustStatus(t, r, http.StatusAccepted)
	id := r.json(t)["id"].(string)
	r = h.do(http.MethodDelete, "/api/bulk_enroll/v1/jobs/"+id, token, nil)
	mustStatus(t, r, http.StatusOK)
	if job := r.json(t); job["state"] != "cancelled" || job["finished_at"] == nil {
		t.Fatalf("cancelled job = %v", job)
	}
	h.deliver(h.receiveChunk())
	job := h.do(http.MethodGet, "/api/bulk_enroll/v1/jobs/"+id, token, nil).json(t)
	if job["state"] != "cancelled" || counts(job)["processed"] != 0 {
		t.Errorf("job = %v", job)
	}
	if h.enrolled(course, a) {
		t.Errorf("enrollment written after cancel")
	}
}

// A dry run reports what would change and writes no enrollment.
func TestJobDryRunWritesNothing(t *testing.T) {
	h := newHarness(t, options{jobs: true, noStreams: true})
	course := "course-v1:JobOrg+Dry+2026"
	h.putCourse(course, "Dry")
	token := bearer(t, "staff", true)
	a := testenv.Address("dry")
	r := h.postCSV(token, "format=identifiers&courses="+url.QueryEscape(course)+"&dry_run=true", "email\n"+a+"\n")
	mustStatus(t, r, http.StatusAccepted)
	id := r.json(t)["id"].(string)
	job := h.waitJob(token, id, 30*time.Second)
	if job["state"] != "succeeded" || job["dry_run"] != true || counts(job)["changed"] != 1 {
		t.Fatalf("dry run = %v", job)
	}
	if res := h.results(token, id); res[0]["after"].(map[string]any)["allowed"] != true {
		t.Errorf("dry run result = %v", res)
	}
	if h.enrolled(course, a) {
		t.Errorf("a dry run wrote an enrollment")
	}
}

// A worker killed mid-chunk: the chunk comes back after the visibility timeout and the job
// completes, counted once.
func TestJobCrashedWorkerChunkComesBack(t *testing.T) {
	h := newHarness(t, options{jobs: true, noStreams: true, crashWorkerOnce: true, jobVisibility: time.Second})
	course := "course-v1:JobOrg+Crash+2026"
	h.putCourse(course, "Crash")
	token := bearer(t, "staff", true)
	r := h.do(http.MethodPost, "/api/bulk_enroll/v1/jobs", token, map[string]any{
		"identifiers": []string{testenv.Address("c1"), testenv.Address("c2")}, "courses": course, "action": "enroll"})
	mustStatus(t, r, http.StatusAccepted)
	job := h.waitJob(token, r.json(t)["id"].(string), 30*time.Second)
	if c := counts(job); job["state"] != "succeeded" || c["processed"] != 2 || c["changed"] != 2 {
		t.Errorf("job = %v", job)
	}
}

// Bad input is a 400 naming the field, before anything is queued.
func TestJobBadInput(t *testing.T) {
	h := newHarness(t, options{jobs: true, noQueueRunner: true, noStreams: true})
	token := bearer(t, "staff", true)
	r := h.postCSV(token, "format=canvas", "course_id,status\ncourse-v1:A+B+C,active\n")
	mustStatus(t, r, http.StatusBadRequest)
	if string(r.Body) != `{"file":["Missing required column: user_id."]}` {
		t.Errorf("body = %s", r.Body)
	}
	r = h.postCSV(token, "format=oneroster", "classSourcedId,userSourcedId,status\n")
	mustStatus(t, r, http.StatusBadRequest)
	if string(r.Body) != `{"file":["Missing required column: role."]}` {
		t.Errorf("body = %s", r.Body)
	}
	r = h.postCSV(token, "format=xlsx", "a\n")
	mustStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.Body), `"format"`) {
		t.Errorf("body = %s", r.Body)
	}
	r = h.postCSV(token, "format=identifiers", "identifier\na@example.com\n")
	mustStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.Body), `"courses"`) {
		t.Errorf("body = %s", r.Body)
	}
	// Synchronous bulk enroll over the limit names the jobs endpoint.
	many := make([]string, 10_001)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	r = h.do(http.MethodPost, "/api/bulk_enroll/v1/bulk_enroll/", token, map[string]any{
		"identifiers": many, "courses": "course-v1:A+B+C", "action": "enroll"})
	mustStatus(t, r, http.StatusRequestEntityTooLarge)
	if !strings.Contains(string(r.Body), "/api/bulk_enroll/v1/jobs") {
		t.Errorf("413 body = %s", r.Body)
	}
}

// enrolled says whether any enrollment (or invitation) of email in course exists.
func (h *harness) enrolled(course, email string) bool {
	h.t.Helper()
	e, err := h.deps.Store.GetEnrollment(context.Background(), rollcall.EnrollmentID(course, email))
	if errors.Is(err, rollcall.ErrNotFound) {
		return false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return e != nil
}
