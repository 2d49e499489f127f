package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
)

// keyCheckDB is the real DynamoDB client, checking every key and item it is asked to handle
// against DynamoDB's limits first (partition keys 1..2048 bytes, sort keys 1..1024, items at
// most 400 KB): the property is that no request ever hands it one it would refuse.
type keyCheckDB struct {
	dynamo.API
	mu  sync.Mutex
	bad []string
}

func (d *keyCheckDB) fail(op, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.bad) < 20 {
		d.bad = append(d.bad, op+": "+why)
	}
}

func (d *keyCheckDB) violations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.bad...)
}

func (d *keyCheckDB) key(op string, it map[string]types.AttributeValue) {
	size := 0
	for name, v := range it {
		size += len(name)
		n := 0
		switch x := v.(type) {
		case *types.AttributeValueMemberS:
			n = len(x.Value)
		case *types.AttributeValueMemberB:
			n = len(x.Value)
		case *types.AttributeValueMemberN:
			n = len(x.Value)
		case *types.AttributeValueMemberL:
			for _, el := range x.Value {
				if s, ok := el.(*types.AttributeValueMemberS); ok {
					n += len(s.Value) + 1
				}
			}
		}
		size += n
		isPK := name == "PK" || strings.HasSuffix(name, "PK")
		isSK := name == "SK" || strings.HasSuffix(name, "SK")
		switch {
		case isPK && (n == 0 || n > 2048):
			d.fail(op, fmt.Sprintf("%s of %d bytes", name, n))
		case isSK && (n == 0 || n > 1024):
			d.fail(op, fmt.Sprintf("%s of %d bytes", name, n))
		}
	}
	if size > 400_000 {
		d.fail(op, fmt.Sprintf("item of about %d bytes", size))
	}
}

func (d *keyCheckDB) values(op string, vs map[string]types.AttributeValue) {
	for name, v := range vs {
		if s, ok := v.(*types.AttributeValueMemberS); ok && len(s.Value) > 2048 {
			d.fail(op, fmt.Sprintf("value %s of %d bytes", name, len(s.Value)))
		}
	}
}

func (d *keyCheckDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	d.key("GetItem", in.Key)
	return d.API.GetItem(ctx, in, o...)
}

func (d *keyCheckDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	d.key("PutItem", in.Item)
	return d.API.PutItem(ctx, in, o...)
}

func (d *keyCheckDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	d.key("DeleteItem", in.Key)
	return d.API.DeleteItem(ctx, in, o...)
}

func (d *keyCheckDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.key("UpdateItem", in.Key)
	d.values("UpdateItem", in.ExpressionAttributeValues)
	return d.API.UpdateItem(ctx, in, o...)
}

func (d *keyCheckDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	d.values("Query", in.ExpressionAttributeValues)
	return d.API.Query(ctx, in, o...)
}

func (d *keyCheckDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for _, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			d.key("BatchGetItem", k)
		}
	}
	return d.API.BatchGetItem(ctx, in, o...)
}

func (d *keyCheckDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for _, ws := range in.RequestItems {
		for _, w := range ws {
			if w.PutRequest != nil {
				d.key("BatchWriteItem", w.PutRequest.Item)
			}
			if w.DeleteRequest != nil {
				d.key("BatchWriteItem", w.DeleteRequest.Key)
			}
		}
	}
	return d.API.BatchWriteItem(ctx, in, o...)
}

func (d *keyCheckDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, ti := range in.TransactItems {
		switch {
		case ti.Put != nil:
			d.key("TransactWriteItems", ti.Put.Item)
		case ti.Update != nil:
			d.key("TransactWriteItems", ti.Update.Key)
		case ti.Delete != nil:
			d.key("TransactWriteItems", ti.Delete.Key)
		case ti.ConditionCheck != nil:
			d.key("TransactWriteItems", ti.ConditionCheck.Key)
		}
	}
	return d.API.TransactWriteItems(ctx, in, o...)
}

// hostileValue is a random value of a length around the limits, of characters that are
// allowed, foreign or structural.
func hostileValue(r *rand.Rand) string {
	lengths := []int{1, 2, 149, 150, 151, 253, 254, 255, 256, 1023, 1025, 2047, 2049, 3000, 10000}
	alphabets := []string{
		"abcdefghijklmnopqrstuvwxyz", "ABCxyz019_.-+@", "a@b.c", "\u0130\u212A\u00e9", "/%+:~",
		"\x00\x01\r\n\t", "course-v1:A+B+C", " ,",
	}
	n := lengths[r.IntN(len(lengths))]
	alpha := []rune(alphabets[r.IntN(len(alphabets))])
	var b strings.Builder
	for b.Len() < n {
		b.WriteRune(alpha[r.IntN(len(alpha))])
	}
	s := b.String()
	switch r.IntN(4) {
	case 0:
		s = strings.Repeat("x", max(0, n-12)) + "@example.com"
	case 1:
		s = "course-v1:" + strings.Repeat("A", n) + "+B+C"
	}
	return s
}

// Property: whatever a caller puts in an identifier, a path value, a query value, a field or
// an Idempotency-Key, no request reaches DynamoDB with a key or item it would refuse, and
// none is answered 5xx. (Before the fix: 503 with Retry-After for long usernames in bulk
// identifiers, user paths and so2 queries, and for long paths with an Idempotency-Key.)
func TestHostileValuesNeverReachTheStore(t *testing.T) {
	e := newEnv(t, "BulkEnrollFunction", "AdminFunction", "ListEnrollmentsFunction")
	f := &fixture{env: e, staff: token(t, "Bob", true)}
	mustStatus(t, e.do("PUT", "/api/courses/"+courseKey, f.staff, map[string]any{"title": "Demo"}, ""), http.StatusCreated)
	mustStatus(t, e.do("PUT", "/api/courses/"+cohortCourse, f.staff, map[string]any{"title": "Cohorts", "cohorts": []string{"cohort1"}, "admins": []string{"carol"}}, ""), http.StatusCreated)
	check := &keyCheckDB{API: f.deps.Store.DB}
	f.deps.Store.DB = check
	learner := token(t, "learner", false)
	admin := token(t, "carol", false)
	r := rand.New(rand.NewPCG(1, 2))
	type req struct {
		method, path, tok string
		body              any
		idem              string
	}
	for i := 0; i < 40; i++ {
		v := hostileValue(r)
		p := url.PathEscape(v)
		q := url.QueryEscape(v)
		reqs := []req{
			{"POST", bulkPaths[0], f.staff, map[string]any{"identifiers": []string{v, "fine@example.com"}, "action": "enroll", "courses": courseKey}, ""},
			{"POST", bulkPaths[1], admin, map[string]any{"identifiers": v, "action": "enroll", "courses": cohortCourse, "cohorts": v, "reason": v}, ""},
			{"POST", bulkPaths[0], f.staff, map[string]any{"identifiers": "x@example.com", "action": "enroll", "courses": v}, ""},
			{"GET", "/api/users/" + p, f.staff, nil, ""},
			{"GET", "/api/users/" + p, learner, nil, ""},
			{"POST", "/api/users", f.staff, map[string]any{"username": v, "email": v}, ""},
			{"GET", "/api/courses/" + p, f.staff, nil, ""},
			{"GET", "/api/courses/" + p, learner, nil, ""},
			{"PUT", "/api/courses/" + p, f.staff, map[string]any{"title": v, "cohorts": []string{v}, "admins": []string{v}}, ""},
			{"POST", "/api/courses/" + p + "/enrollments", learner, map[string]any{"enrollment": map[string]any{"email": v}}, "k-" + fmt.Sprint(i)},
			{"POST", "/api/courses/" + url.PathEscape(courseKey) + "/enrollments", f.staff, map[string]any{"enrollment": map[string]any{"email": v}}, v},
			{"POST", bulkPaths[0] + "?x=" + q, learner, map[string]any{"identifiers": v, "action": "enroll", "courses": courseKey}, v},
			{"DELETE", "/api/enrollments/" + p, f.staff, nil, ""},
			{"GET", "/api/enrollments/" + p, f.staff, nil, ""},
			{"GET", "/api/so2/v1/enrollments?username=" + q + "&email=" + q + "&course_id=" + q, f.staff, nil, ""},
			{"GET", "/api/so2/v1/enrollments?username=" + q, f.staff, nil, ""},
			{"GET", "/api/so2/v1/enrollments?email=" + q, learner, nil, ""},
			{"GET", "/api/so2/v1/enrollments?course_id=" + q, admin, nil, ""},
			{"GET", "/api/courses/" + p + "/enrollments?state=" + q, f.staff, nil, ""},
			{"GET", "/api/users/" + p + "/enrollments?courses_ids[]=" + q, f.staff, nil, ""},
			{"GET", "/api/users/Bob/enrollments?courses_ids[]=" + q + "&cursor=" + q, f.staff, nil, ""},
		}
		for _, rq := range reqs {
			hr := f.request(rq.method, rq.path, rq.tok, rq.body, "")
			if rq.idem != "" {
				hr.Header.Set("Idempotency-Key", rq.idem)
			}
			resp := f.serve(hr)
			if resp.Status >= 500 {
				t.Fatalf("%s %.120s (value of %d bytes): %d %s", rq.method, rq.path, len(v), resp.Status, resp.Body)
			}
		}
	}
	// A course item that would pass 400 KB is a 400.
	admins := make([]string, 3000)
	for i := range admins {
		admins[i] = fmt.Sprintf("%0150d", i)
	}
	resp := f.do("PUT", "/api/courses/course-v1:Big+Admins+2026", f.staff, map[string]any{"title": "Big", "admins": admins}, "")
	mustStatus(t, resp, http.StatusBadRequest)
	if bad := check.violations(); len(bad) > 0 {
		t.Fatalf("refused values reached DynamoDB:\n%s", strings.Join(bad, "\n"))
	}
}
