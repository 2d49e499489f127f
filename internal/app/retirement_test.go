package app_test

// The retirement pipeline driven as Open edX's retirement driver drives it (queue, state
// updates, unenroll, retire, and a repeat of each step), through the real handlers, against
// DynamoDB Local; afterwards the whole table is read (a Scan, in this test only) for the old
// username and email.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/web"
	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// retirementEnv serves the bulk, admin and user API functions together.
type retirementEnv struct {
	*env
	staff, service string
}

func newRetirementEnv(t *testing.T) *retirementEnv {
	t.Helper()
	return withUserAPI(t, newEnv(t, "BulkEnrollFunction", "AdminFunction"))
}

// withUserAPI adds UserApiFunction's routes to e.
func withUserAPI(t *testing.T, e *env) *retirementEnv {
	t.Helper()
	user, err := web.Handler(e.deps, "UserApiFunction", web.UserAPIOps(e.deps, mustAPI(t, e.deps)))
	if err != nil {
		t.Fatal(err)
	}
	rest := e.handler
	e.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/user/") || strings.HasPrefix(r.URL.Path, "/api/enrollment/v1/") {
			user.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
	return &retirementEnv{env: e, staff: token(t, "Bob", true), service: serviceToken(t, "retirement_worker")}
}

// serviceToken is the retirement driver's token: not staff, claim retirement_service.
func serviceToken(t *testing.T, username string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"username": username, "email": username + "@example.com", "retirement_service": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *retirementEnv) setState(t *testing.T, username, state string, want int) {
	t.Helper()
	mustStatus(t, e.do("PATCH", "/api/user/v1/accounts/update_retirement_status/", e.service,
		map[string]any{"username": username, "new_state": state, "response": "moved to " + state}, ""), want)
}

func (e *retirementEnv) status(t *testing.T, username string) map[string]any {
	t.Helper()
	r := e.do("GET", "/api/user/v1/accounts/"+username+"/retirement_status/", e.service, nil, "")
	mustStatus(t, r, http.StatusOK)
	return r.json(t).(map[string]any)
}

// scanFor reads every item of the table and returns those holding any of needles (lower
// case) in a key, a string attribute or a binary one (gzipped or not).
func scanFor(t *testing.T, d *app.Deps, needles ...string) []string {
	t.Helper()
	var hits []string
	p := dynamodb.NewScanPaginator(d.DynamoDB, &dynamodb.ScanInput{TableName: &d.Config.TableName})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			n++
			for k, v := range it {
				var vals []string
				switch x := v.(type) {
				case *types.AttributeValueMemberS:
					vals = []string{x.Value}
				case *types.AttributeValueMemberL:
					for _, el := range x.Value {
						if s, ok := el.(*types.AttributeValueMemberS); ok {
							vals = append(vals, s.Value)
						}
					}
				case *types.AttributeValueMemberB:
					// Binary attributes are read as they are and, when gzipped (job results,
					// idempotency bodies), unzipped.
					vals = []string{string(x.Value)}
					if zr, err := gzip.NewReader(bytes.NewReader(x.Value)); err == nil {
						if raw, err := io.ReadAll(zr); err == nil {
							vals = append(vals, string(raw))
						}
					}
				}
				for _, s := range vals {
					for _, needle := range needles {
						if strings.Contains(strings.ToLower(s), needle) {
							hits = append(hits, fmt.Sprintf("%v/%v %s=%q", it["PK"], it["SK"], k, s))
						}
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("scan read no items")
	}
	return hits
}

// inlineQueue runs a job's chunks as soon as they are queued, through the job service and
// the real store (the queue itself is not what these tests are about).
type inlineQueue struct{ js *rollcall.JobService }

func (q inlineQueue) SendChunks(ctx context.Context, chunks []rollcall.JobChunk) error {
	for _, c := range chunks {
		body, err := rollcall.EncodeChunk(c)
		if err != nil {
			return err
		}
		dc, err := rollcall.DecodeChunk(body)
		if err != nil {
			return err
		}
		if err := q.js.RunChunk(ctx, dc); err != nil {
			return err
		}
	}
	return nil
}

// runJob creates a roster job from a CSV file as creator and runs it to its end; it returns the job.
func runJob(t *testing.T, d *app.Deps, creator rollcall.Actor, format, file string, fields map[string]string) *rollcall.Job {
	t.Helper()
	js := &rollcall.JobService{Service: d.Service, Jobs: d.Store}
	js.Queue = inlineQueue{js}
	f := rollcall.Fields{"format": {Present: true, Values: []string{format}}}
	for k, v := range fields {
		f[k] = rollcall.Field{Present: true, Values: []string{v}}
	}
	j, err := js.CreateJob(context.Background(), creator, rollcall.JobInput{Fields: f, File: strings.NewReader(file)})
	if err != nil {
		t.Fatal(err)
	}
	if !rollcall.JobFinal(j.State) {
		t.Fatalf("job %+v did not finish", j)
	}
	return j
}

// jobRows reads a job's results.
func jobRows(t *testing.T, d *app.Deps, id string) []rollcall.RowResult {
	t.Helper()
	js := &rollcall.JobService{Service: d.Service, Jobs: d.Store}
	p, err := js.JobResults(context.Background(), rollcall.Actor{Username: "Bob", Staff: true}, id, "1000", "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

const (
	retCourseA = "course-v1:Ret+A+2026"
	retCourseB = "course-v1:Ret+B+2026"
	retCourseC = "course-v1:Ret+C+2026"
)

func TestRetirementPipeline(t *testing.T) {
	e := newRetirementEnv(t)
	ctx := context.Background()
	for _, c := range []string{retCourseA, retCourseB, retCourseC} {
		mustStatus(t, e.do("PUT", "/api/courses/"+c, e.staff, map[string]any{"title": "Retirement " + c}, ""), http.StatusCreated)
	}
	mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": "Alice_R", "email": "Alice.R@Example.com"}, ""), http.StatusCreated)
	mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": "carl", "email": "carl@example.com"}, ""), http.StatusCreated)
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{
		"identifiers": "Alice_R,carl", "action": "enroll", "courses": retCourseA + "," + retCourseB, "email_students": true}, ""), http.StatusOK)
	// An open invitation with mail owed.
	mustStatus(t, e.do("POST", "/api/courses/"+retCourseC+"/enrollments", e.staff, map[string]any{"enrollment": map[string]any{"email": "alice.r@example.com"}}, ""), http.StatusCreated)

	// What the stream functions would have written: an audit entry per change, mail markers.
	es, err := e.deps.Store.PersonEnrollments(ctx, "alice.r@example.com")
	if err != nil || len(es) != 3 {
		t.Fatalf("enrollments %v %v", es, err)
	}
	var entries []*rollcall.AuditEntry
	var refs []rollcall.MailRef
	for _, en := range es {
		entries = append(entries, rollcall.AuditEntryOf(nil, en))
		if en.MailSeq > 0 {
			refs = append(refs, rollcall.MailRef{EnrollmentID: en.ID, Seq: en.MailSeq})
		}
	}
	if failed, err := e.deps.Store.WriteAuditEntries(ctx, entries); err != nil || len(failed) > 0 {
		t.Fatal(failed, err)
	}
	if len(refs) == 0 {
		t.Fatal("no mail owed")
	}
	if failed, err := e.deps.Store.MarkMailSent(ctx, refs[:1], nil, e.clock()); err != nil || len(failed) > 0 {
		t.Fatal(failed, err)
	}

	// Roster jobs that name her, by username and by email (in another case), beside carl: a
	// finished one (with a row error on her) and a dry run that she made herself (she is also
	// staff here: the job item and her job list name her as its creator).
	staffBob := rollcall.Actor{Username: "Bob", Staff: true}
	enrollJob := runJob(t, e.deps, staffBob, rollcall.JobFormatCanvas, "course_id,user_id,role,status\n"+
		retCourseA+",Alice_R,student,active\n"+retCourseB+",ALICE.R@example.com,student,active\n"+
		retCourseA+",carl,student,active\n"+retCourseC+",alice_r,teacher,active\n", nil)
	dryJob := runJob(t, e.deps, rollcall.Actor{Username: "Alice_R", Email: "Alice.R@Example.com", Staff: true}, rollcall.JobFormatIdentifiers, "identifier\nalice.r@example.com\ncarl@example.com\n",
		map[string]string{"courses": retCourseC, "dry_run": "true"})
	if enrollJob.Counts.Processed != 4 || dryJob.Counts.Processed != 2 || !dryJob.DryRun {
		t.Fatalf("jobs: %+v %+v", enrollJob.Counts, dryJob.Counts)
	}

	alice := token(t, "Alice_R", false)
	// Learners may not see or drive anyone's retirement.
	mustStatus(t, e.do("GET", "/api/user/v1/accounts/retirement_queue/?cool_off_days=0&states=PENDING", alice, nil, ""), http.StatusForbidden)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/deactivate_logout/", token(t, "carl", false), map[string]any{"username": "Alice_R"}, ""), http.StatusForbidden)
	mustStatus(t, e.do("GET", "/api/user/v1/accounts/Alice_R/retirement_status/", e.service, nil, ""), http.StatusNotFound)
	mustStatus(t, e.do("POST", "/api/enrollment/v1/unenroll/", e.service, map[string]any{"username": "Alice_R"}, ""), http.StatusNotFound)

	// The learner asks; a repeat changes nothing.
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/deactivate_logout/", alice, nil, ""), http.StatusNoContent)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/deactivate_logout/", alice, nil, ""), http.StatusNoContent)
	mustStatus(t, e.do("GET", "/api/user/v1/accounts/Alice_R/retirement_status/", alice, nil, ""), http.StatusForbidden)
	st := e.status(t, "alice_r")
	if st["current_state"].(map[string]any)["state_name"] != "PENDING" || st["original_email"] != "alice.r@example.com" ||
		!strings.HasPrefix(st["retired_username"].(string), rollcall.RetiredUsernamePrefix) ||
		st["retired_email"] != st["retired_username"].(string)+"@retired.invalid" {
		t.Fatalf("status %v", st)
	}

	// The account can no longer be enrolled, by username or by email.
	r := e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{
		"identifiers": "Alice_R,alice.r@example.com", "action": "enroll", "courses": retCourseC}, "")
	mustStatus(t, r, http.StatusOK)
	if strings.Count(string(r.Body), `"invalidIdentifier":true`) != 2 {
		t.Fatalf("bulk into a retiring account: %s", r.Body)
	}
	mustStatus(t, e.do("POST", "/api/courses/"+retCourseA+"/enrollments", e.staff, map[string]any{"enrollment": map[string]any{"email": "alice.r@example.com"}}, ""), http.StatusBadRequest)

	// The queue honours the cool-off.
	queue := func(days int, states ...string) []any {
		q := fmt.Sprintf("/api/user/v1/accounts/retirement_queue/?cool_off_days=%d", days)
		for _, s := range states {
			q += "&states=" + s
		}
		r := e.do("GET", q, e.service, nil, "")
		mustStatus(t, r, http.StatusOK)
		return r.json(t).([]any)
	}
	if got := queue(7, "PENDING"); len(got) != 0 {
		t.Fatalf("queue within cool-off: %v", got)
	}
	e.advance(8 * 24 * time.Hour)
	got := queue(7, "PENDING", "ERRORED")
	if len(got) != 1 || got[0].(map[string]any)["original_username"] != "Alice_R" {
		t.Fatalf("queue: %v", got)
	}
	mustStatus(t, e.do("GET", "/api/user/v1/accounts/retirement_queue/?cool_off_days=x&states=PENDING", e.service, nil, ""), http.StatusBadRequest)
	mustStatus(t, e.do("GET", "/api/user/v1/accounts/retirement_queue/?cool_off_days=0&states=NOPE", e.service, nil, ""), http.StatusBadRequest)

	// The driver: each step, and each step again.
	e.setState(t, "Alice_R", "RETIRING_ENROLLMENTS", http.StatusNoContent)
	e.setState(t, "Alice_R", "RETIRING_ENROLLMENTS", http.StatusNoContent)
	e.setState(t, "Alice_R", "PENDING", http.StatusBadRequest)
	e.setState(t, "Alice_R", "NOT_A_STATE", http.StatusBadRequest)
	r = e.do("POST", "/api/enrollment/v1/unenroll/", e.service, map[string]any{"username": "Alice_R"}, "")
	mustStatus(t, r, http.StatusOK)
	jsonEqual(t, r.Body, fmt.Sprintf(`[%q,%q]`, retCourseA, retCourseB))
	mustStatus(t, e.do("POST", "/api/enrollment/v1/unenroll/", e.service, map[string]any{"username": "Alice_R"}, ""), http.StatusNoContent)
	e.setState(t, "Alice_R", "ENROLLMENTS_COMPLETE", http.StatusNoContent)
	e.setState(t, "Alice_R", "RETIRING_LMS", http.StatusNoContent)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/retire/", e.service, "username=Alice_R", "application/x-www-form-urlencoded"), http.StatusNoContent)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/retire/", e.service, map[string]any{"username": "Alice_R"}, ""), http.StatusNoContent)
	mustStatus(t, e.do("POST", "/api/enrollment/v1/unenroll/", e.service, map[string]any{"username": "Alice_R"}, ""), http.StatusNoContent)
	e.setState(t, "Alice_R", "LMS_COMPLETE", http.StatusNoContent)
	e.setState(t, "Alice_R", "COMPLETE", http.StatusNoContent)
	e.setState(t, "Alice_R", "COMPLETE", http.StatusNoContent)
	e.setState(t, "Alice_R", "ERRORED", http.StatusBadRequest) // out of a dead end

	st = e.status(t, "Alice_R")
	retiredUser, retiredEmail := st["retired_username"].(string), st["retired_email"].(string)
	if st["current_state"].(map[string]any)["state_name"] != "COMPLETE" || st["last_state"].(map[string]any)["state_name"] != "LMS_COMPLETE" ||
		st["original_email"] == "alice.r@example.com" {
		t.Fatalf("status after retire: %v", st)
	}

	// The old names find nothing; the pseudonyms hold the history.
	mustStatus(t, e.do("GET", "/api/users/Alice_R", e.staff, nil, ""), http.StatusNotFound)
	mustStatus(t, e.do("GET", "/api/users/"+retiredUser, e.staff, nil, ""), http.StatusOK)
	if es, _ := e.deps.Store.PersonEnrollments(ctx, "alice.r@example.com"); len(es) != 0 {
		t.Fatalf("old email still has %d enrollments", len(es))
	}
	moved, err := e.deps.Store.PersonEnrollments(ctx, retiredEmail)
	if err != nil || len(moved) != 3 {
		t.Fatalf("moved enrollments %v %v", moved, err)
	}
	for _, m := range moved {
		if m.State != rollcall.StateUnenrolled || !m.MailOwedAt.IsZero() || m.MailSeq != 0 || m.TokenNonce != "" ||
			m.Email != retiredEmail || (m.Username != "" && m.Username != retiredUser) {
			t.Fatalf("moved enrollment %+v", m)
		}
		if au, err := e.deps.Store.AuditEntries(ctx, m.ID); err != nil || len(au) != 1 || au[0].Email != retiredEmail {
			t.Fatalf("audit of %s: %v %v", m.CourseID, au, err)
		}
	}
	// carl is untouched.
	if es, _ := e.deps.Store.PersonEnrollments(ctx, "carl@example.com"); len(es) != 2 || es[0].State != rollcall.StateActive {
		t.Fatalf("carl: %v", es)
	}
	// Neither the names nor the keys derived from them (the hash of the email, the username key).
	if hits := scanFor(t, e.deps, "alice_r", "alice.r@example.com", strings.ToLower(dynamo.PersonPK("alice.r@example.com")),
		strings.ToLower(dynamo.UserPK("Alice_R"))); len(hits) > 0 {
		sort.Strings(hits)
		t.Fatalf("the table still names the retired person:\n%s", strings.Join(hits, "\n"))
	}
	// The jobs' results name the pseudonyms where they named her, and carl as before.
	var idents []string
	for _, id := range []string{enrollJob.ID, dryJob.ID} {
		for _, row := range jobRows(t, e.deps, id) {
			idents = append(idents, row.Identifier)
		}
	}
	if want := []string{retiredUser, retiredEmail, "carl", retiredUser, retiredEmail, "carl@example.com"}; fmt.Sprint(idents) != fmt.Sprint(want) {
		t.Fatalf("job results name %v, want %v", idents, want)
	}
	// Her job is hers under the pseudonyms: its creator, and her job list.
	if j, err := e.deps.Store.GetJob(ctx, dryJob.ID); err != nil || j.CreatedBy != retiredUser || j.CreatorEm != retiredEmail {
		t.Fatalf("her job after retire: %+v %v", j, err)
	}
	if jobs, _, err := e.deps.Store.ListJobs(ctx, retiredUser, "", 10); err != nil || len(jobs) != 1 || jobs[0].ID != dryJob.ID {
		t.Fatalf("her job list after retire: %v %v", jobs, err)
	}
	// A retired account cannot be enrolled by its old username.
	r = e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{"identifiers": "Alice_R", "action": "enroll", "courses": retCourseC}, "")
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"invalidIdentifier":true`) {
		t.Fatalf("bulk with the old username: %s", r.Body)
	}
}

func TestRetirementCancel(t *testing.T) {
	e := newRetirementEnv(t)
	mustStatus(t, e.do("PUT", "/api/courses/"+retCourseA, e.staff, map[string]any{"title": "A"}, ""), http.StatusCreated)
	mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": "dora", "email": "dora@example.com"}, ""), http.StatusCreated)
	// Staff may ask for another user.
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/deactivate_logout/", e.staff, map[string]any{"username": "dora"}, ""), http.StatusNoContent)
	id := e.status(t, "dora")["id"].(float64)
	body := map[string]any{"retirement_id": json.Number(fmt.Sprint(int64(id)))}
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/cancel_retirement/", e.service, body, ""), http.StatusForbidden)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/cancel_retirement/", e.staff, map[string]any{"retirement_id": "x"}, ""), http.StatusBadRequest)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/cancel_retirement/", e.staff, body, ""), http.StatusNoContent)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/cancel_retirement/", e.staff, body, ""), http.StatusNotFound)
	mustStatus(t, e.do("GET", "/api/user/v1/accounts/dora/retirement_status/", e.staff, nil, ""), http.StatusNotFound)
	// Usable again.
	r := e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{"identifiers": "dora", "action": "enroll", "courses": retCourseA}, "")
	mustStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.Body), "invalidIdentifier") {
		t.Fatalf("bulk after cancel: %s", r.Body)
	}
	// Only while PENDING.
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/deactivate_logout/", token(t, "dora", false), nil, ""), http.StatusNoContent)
	e.setState(t, "dora", "RETIRING_ENROLLMENTS", http.StatusNoContent)
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/cancel_retirement/", e.staff, body, ""), http.StatusBadRequest)
}

// TestRetirementCost measures what retiring a learner with 100 enrollments (each with one
// audit entry) costs in requests and capacity units, through the store's metrics.
func TestRetirementCost(t *testing.T) {
	e := newRetirementEnv(t)
	ctx := context.Background()
	mustStatus(t, e.do("POST", "/api/users", e.staff, map[string]any{"username": "heavy", "email": "heavy@example.com"}, ""), http.StatusCreated)
	var courses []string
	for i := range 100 {
		c := fmt.Sprintf("course-v1:Cost+C%03d+2026", i)
		courses = append(courses, c)
		mustStatus(t, e.do("PUT", "/api/courses/"+c, e.staff, map[string]any{"title": c}, ""), http.StatusCreated)
	}
	mustStatus(t, e.do("POST", "/api/bulk_enroll/v1/bulk_enroll/", e.staff, map[string]any{
		"identifiers": "heavy", "action": "enroll", "courses": strings.Join(courses, ",")}, ""), http.StatusOK)
	es, err := e.deps.Store.PersonEnrollments(ctx, "heavy@example.com")
	if err != nil || len(es) != 100 {
		t.Fatalf("%d enrollments, %v", len(es), err)
	}
	var entries []*rollcall.AuditEntry
	for _, en := range es {
		entries = append(entries, rollcall.AuditEntryOf(nil, en))
	}
	if failed, err := e.deps.Store.WriteAuditEntries(ctx, entries); err != nil || len(failed) > 0 {
		t.Fatal(failed, err)
	}
	mustStatus(t, e.do("POST", "/api/user/v1/accounts/deactivate_logout/", token(t, "heavy", false), nil, ""), http.StatusNoContent)

	step := func(name, method, path string, body any, want int) {
		t.Helper()
		before := e.deps.Store.Metrics.Snapshot()
		mustStatus(t, e.do(method, path, e.service, body, ""), want)
		d := e.deps.Store.Metrics.Snapshot().Sub(before)
		t.Logf("%-8s requests=%d read_units=%.1f write_units=%.1f (table %.1f, indexes %.1f)",
			name, d.Requests, d.ReadUnits, d.WriteUnits(), d.TableWriteUnits, d.IndexWriteUnits)
	}
	step("unenroll", "POST", "/api/enrollment/v1/unenroll/", map[string]any{"username": "heavy"}, http.StatusOK)
	before := e.deps.Store.Metrics.Snapshot()
	step("retire", "POST", "/api/user/v1/accounts/retire/", map[string]any{"username": "heavy"}, http.StatusNoContent)
	d := e.deps.Store.Metrics.Snapshot().Sub(before)
	step("repeat", "POST", "/api/user/v1/accounts/retire/", map[string]any{"username": "heavy"}, http.StatusNoContent)
	// 200 items rewritten (100 enrollments, 100 audit entries): at most 2 writes each plus
	// the index moves, the user items and the request.
	if d.Requests > 40 || d.WriteUnits() > 1200 {
		t.Fatalf("retire cost %+v", d)
	}
	if hits := scanFor(t, e.deps, "heavy"); len(hits) > 0 {
		t.Fatalf("left behind: %v", hits)
	}
}
