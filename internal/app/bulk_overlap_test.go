package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
)

// heldResolve is DynamoDB with one twist: a BatchGetItem of account keys (SK USER) is held
// until a BatchGetItem of at least minKeys enrollment keys (SK E#...) has been sent, or for a
// second. It records whether such an enrollment read was sent before an account read
// returned: whether the enrollments were read while the identifiers resolved.
type heldResolve struct {
	dynamo.API
	minKeys    int
	mu         sync.Mutex
	enrollRead chan struct{} // closed at the first enrollment read of minKeys keys
	resolved   bool          // an account read has returned
	overlapped bool
}

func newHeldResolve(db dynamo.API, minKeys int) *heldResolve {
	return &heldResolve{API: db, minKeys: minKeys, enrollRead: make(chan struct{})}
}

func (h *heldResolve) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	accounts, enrollments := false, 0
	for _, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			sk, _ := k["SK"].(*types.AttributeValueMemberS)
			switch {
			case sk == nil:
			case sk.Value == "USER":
				accounts = true
			case strings.HasPrefix(sk.Value, "E#"):
				enrollments++
			}
		}
	}
	if enrollments >= h.minKeys {
		h.mu.Lock()
		if !h.resolved {
			h.overlapped = true
		}
		select {
		case <-h.enrollRead:
		default:
			close(h.enrollRead)
		}
		h.mu.Unlock()
	}
	if !accounts {
		return h.API.BatchGetItem(ctx, in, o...)
	}
	select {
	case <-h.enrollRead:
	case <-time.After(time.Second):
	}
	out, err := h.API.BatchGetItem(ctx, in, o...)
	h.mu.Lock()
	h.resolved = true
	h.mu.Unlock()
	return out, err
}

// A bulk request reads its email identifiers' enrollments while it resolves its identifiers,
// rather than after: the small path (one transaction) and the large path (under the lease)
// alike. Each still decides on every before-state: an enrolled learner stays
// unchanged, a username's enrollment (read after the resolve) is found.
func TestBulkReadsEnrollmentsWhileResolving(t *testing.T) {
	f := newFixture(t)
	many := func(prefix string, n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s%03d@example.com", prefix, i)
		}
		return ids
	}
	// minKeys: the enrollment read that must overlap the resolve; a large request also reads
	// a sample of 20 first (to choose whether to lock), which does not count.
	cases := []struct {
		name    string
		body    map[string]any
		minKeys int
	}{
		{"small", map[string]any{"identifiers": []string{"new1@example.com", enrolledEmail, "EnrolledStudent"}, "action": "enroll", "courses": courseKey}, 2},
		{"large", map[string]any{"identifiers": append(many("big", 40), enrolledEmail, "EnrolledStudent"), "action": "enroll", "courses": courseKey}, 21},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			held := newHeldResolve(f.deps.Store.DB, c.minKeys)
			f.deps.Store.DB = held
			defer func() { f.deps.Store.DB = held.API }()
			r := f.bulk(t, bulkPaths[0], c.body, true)
			mustStatus(t, r, http.StatusOK)
			if !held.overlapped {
				t.Fatal("the enrollments were read only after the identifiers resolved")
			}
			results := bulkResults(t, r, courseKey)
			for _, res := range results {
				ident := res["identifier"].(string)
				before, after := res["before"].(map[string]any), res["after"].(map[string]any)
				known := ident == enrolledEmail || ident == "EnrolledStudent"
				if known && (before["enrollment"] != true || after["enrollment"] != true) {
					t.Errorf("%s: %v -> %v, want enrolled before and after", ident, before, after)
				}
				if !known && before["enrollment"] == true {
					t.Errorf("%s: enrolled before", ident)
				}
			}
			if len(results) != len(c.body["identifiers"].([]string)) {
				t.Fatalf("%d results", len(results))
			}
		})
	}
}
