package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
)

// The smaller hardening findings, each as the attack that found it.
func TestSmallerHardening(t *testing.T) {
	e := newEnv(t, "BulkEnrollFunction", "AdminFunction", "ListEnrollmentsFunction")
	f := &fixture{env: e, staff: token(t, "Bob", true)}
	mustStatus(t, e.do("PUT", "/api/courses/"+courseKey, f.staff, map[string]any{"title": "Demo"}, ""), http.StatusCreated)
	mustStatus(t, e.do("PUT", "/api/courses/"+cohortCourse, f.staff, map[string]any{"title": "Cohorts", "cohorts": []string{"cohort1"}}, ""), http.StatusCreated)

	t.Run("replayed 201 keeps Location and no-store", func(t *testing.T) {
		create := func() response {
			req := f.request("POST", "/api/courses/"+courseKey+"/enrollments", f.staff, `{"enrollment": {"email": "loc@example.com"}}`, "application/json")
			req.Header.Set("Idempotency-Key", "loc-1")
			return f.serve(req)
		}
		c1, c2 := create(), create()
		mustStatus(t, c1, http.StatusCreated)
		mustStatus(t, c2, http.StatusCreated)
		if c1.Header.Get("Location") == "" || c2.Header.Get("Location") != c1.Header.Get("Location") {
			t.Fatalf("Location %q, replayed %q", c1.Header.Get("Location"), c2.Header.Get("Location"))
		}
		for _, r := range []response{c1, c2} {
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("a 201 with invitation_url has Cache-Control %q", r.Header.Get("Cache-Control"))
			}
		}
	})
	t.Run("a learner's 403 is not kept under the key", func(t *testing.T) {
		tok := token(t, "dora", false)
		body := map[string]any{"identifiers": "kept@example.com", "action": "enroll", "courses": cohortCourse}
		send := func() response {
			req := f.request("POST", bulkPaths[0], tok, body, "")
			req.Header.Set("Idempotency-Key", "dora-1")
			return f.serve(req)
		}
		mustStatus(t, send(), http.StatusForbidden)
		mustStatus(t, e.do("PUT", "/api/courses/"+cohortCourse, f.staff, map[string]any{"title": "Cohorts", "cohorts": []string{"cohort1"}, "admins": []string{"dora"}}, ""), http.StatusOK)
		if r := send(); r.Status != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("after dora became admin: %d %v %s", r.Status, r.Header, r.Body)
		}
	})
	t.Run("a query string that does not parse, or a list for one value", func(t *testing.T) {
		r := e.do("GET", "/api/so2/v1/enrollments?course_id=%zz", f.staff, nil, "")
		mustStatus(t, r, http.StatusBadRequest)
		jsonEqual(t, r.Body, `{"course_id":["Not a valid query string value."]}`)
		r = e.do("GET", "/api/so2/v1/enrollments?course_id="+courseKey+"&course_id="+cohortCourse, f.staff, nil, "")
		mustStatus(t, r, http.StatusBadRequest)
		jsonEqual(t, r.Body, `{"course_id":["Expected a single value, not a list."]}`)
		r = e.do("GET", "/api/courses/"+courseKey+"/enrollments?state=%G0", f.staff, nil, "")
		mustStatus(t, r, http.StatusBadRequest)
	})
	t.Run("too many multipart parts is a 400", func(t *testing.T) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.WriteField("identifiers", "x@example.com")
		w.WriteField("action", "enroll")
		w.WriteField("courses", courseKey)
		for i := 0; i < 3000; i++ {
			w.WriteField(fmt.Sprintf("extra%d", i), "x")
		}
		w.Close()
		r := e.do("POST", bulkPaths[0], f.staff, b.Bytes(), w.FormDataContentType())
		mustStatus(t, r, http.StatusBadRequest)
	})
	t.Run("a list where one action is expected", func(t *testing.T) {
		r := e.do("POST", bulkPaths[0], f.staff, map[string]any{"identifiers": "list@example.com", "action": []string{"enroll", "unenroll"}, "courses": courseKey}, "")
		mustStatus(t, r, http.StatusBadRequest)
		jsonEqual(t, r.Body, `{"action":["Expected a single value, not a list."]}`)
		r = e.do("POST", bulkPaths[0], f.staff, "identifiers=list%40example.com&courses="+courseKey+"&action=enroll&action=unenroll", "application/x-www-form-urlencoded")
		mustStatus(t, r, http.StatusBadRequest)
	})
	t.Run("control characters in titles, cohorts and reasons", func(t *testing.T) {
		r := e.do("PUT", "/api/courses/"+courseKey, f.staff, map[string]any{"title": "Demo\r\nBcc: victim@example.com"}, "")
		mustStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.Body), `"title"`) {
			t.Fatalf("body %s", r.Body)
		}
		r = e.do("PUT", "/api/courses/"+courseKey, f.staff, map[string]any{"title": "Demo", "cohorts": []string{"a\nb"}}, "")
		mustStatus(t, r, http.StatusBadRequest)
		r = e.do("POST", bulkPaths[0], f.staff, map[string]any{"identifiers": "r@example.com", "action": "enroll", "courses": courseKey, "reason": "why\r\nnot"}, "")
		mustStatus(t, r, http.StatusBadRequest)
		jsonEqual(t, r.Body, `{"reason":["This field may not contain control characters."]}`)
	})
}

// The Redu create's answer carries the invitation token; what is kept for its Idempotency-Key
// must not hold it in plain text.
func TestIdempotencyRecordHoldsNoToken(t *testing.T) {
	f := newFixture(t)
	path := "/api/courses/" + courseKey + "/enrollments"
	req := f.request("POST", path, f.staff, `{"enrollment": {"email": "sealed@example.com"}}`, "application/json")
	req.Header.Set("Idempotency-Key", "sealed-1")
	r := f.serve(req)
	mustStatus(t, r, http.StatusCreated)
	link := r.json(t).(map[string]any)["invitation_url"].(string)
	token := link[strings.LastIndexByte(link, '/')+1:]
	pk := dynamo.IdempotencyPK("bob#POST "+path, "sealed-1")
	out, err := f.deps.Store.DB.Query(context.Background(), &dynamodb.QueryInput{TableName: &f.deps.Store.Table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}}})
	if err != nil || len(out.Items) < 2 {
		t.Fatalf("idempotency items: %d, %v", len(out.Items), err)
	}
	for _, it := range out.Items {
		for name, v := range it {
			var raw []byte
			switch x := v.(type) {
			case *types.AttributeValueMemberS:
				raw = []byte(x.Value)
			case *types.AttributeValueMemberB:
				raw = x.Value
				if zr, err := gzip.NewReader(bytes.NewReader(x.Value)); err == nil {
					if plain, err := io.ReadAll(zr); err == nil {
						raw = append(raw, plain...)
					}
				}
			}
			if bytes.Contains(raw, []byte(token)) {
				t.Fatalf("attribute %s of the idempotency record holds the token", name)
			}
		}
	}
	// And the replay still answers with it.
	req = f.request("POST", path, f.staff, `{"enrollment": {"email": "sealed@example.com"}}`, "application/json")
	req.Header.Set("Idempotency-Key", "sealed-1")
	again := f.serve(req)
	if again.Header.Get("Idempotent-Replayed") != "true" || again.json(t).(map[string]any)["invitation_url"] != link {
		t.Fatalf("replay: %v %s", again.Header, again.Body)
	}
}
