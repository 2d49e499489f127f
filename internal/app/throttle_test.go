package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rollcall/rollcall/internal/testenv"
)

// DynamoDB Local never throttles, so a small server stands in for DynamoDB and answers every
// call with one error, over HTTP to the real SDK client. Throttling that outlasts the SDK's
// retries is the 429 with Retry-After; a server error is still a 503.
func TestStoreThrottlingIs429(t *testing.T) {
	services := testenv.Start(t)
	for _, tc := range []struct {
		code   string
		status int
		want   int
	}{
		{"ThrottlingException", 400, http.StatusTooManyRequests},
		{"ProvisionedThroughputExceededException", 400, http.StatusTooManyRequests},
		{"RequestLimitExceeded", 400, http.StatusTooManyRequests},
		{"InternalServerError", 500, http.StatusServiceUnavailable},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel() // each waits out the SDK's retry backoff
			var calls atomic.Int64
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"refused by the test"}`, tc.code)
			}))
			defer fake.Close()
			e := newEnvOn(t, fake.URL, services.SESEndpoint, "rollcall-throttled", "ListEnrollmentsFunction", "BulkEnrollFunction")
			staff := token(t, "Bob", true)
			for _, r := range []response{
				e.do("GET", "/api/so2/v1/enrollments?course_id=course-v1:Org+T+2026", staff, nil, ""),
				e.do("POST", bulkPaths[0], staff, map[string]any{"identifiers": "a@example.com", "action": "enroll", "courses": "course-v1:Org+T+2026"}, ""),
			} {
				mustStatus(t, r, tc.want)
				switch tc.want {
				case http.StatusTooManyRequests:
					if string(r.Body) != `{"detail":"Request was throttled. Expected available in 1 second."}` || r.Header.Get("Retry-After") != "1" {
						t.Fatalf("429: %v %s", r.Header, r.Body)
					}
				default:
					if !strings.HasPrefix(string(r.Body), `{"detail":"`) || r.Header.Get("Retry-After") == "" {
						t.Fatalf("503: %v %s", r.Header, r.Body)
					}
				}
			}
			if n := calls.Load(); n < 6 {
				t.Fatalf("%d calls to the store for 2 requests: the SDK did not retry", n)
			}
		})
	}
}
