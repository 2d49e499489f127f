package dynamo

import (
	"fmt"
	"testing"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// docs/api.md#data-access-and-scale: a 10,000-learner bulk enroll must not funnel into one key, at any moment
// either. The writes in flight (Parallel calls of 25) each hit many GSI1 keys.
func TestSpreadOverBlocks(t *testing.T) {
	const n, inFlight = 10_000, 8 * 25
	es := make([]*rollcall.Enrollment, n)
	for i := range es {
		es[i] = &rollcall.Enrollment{ID: fmt.Sprint(i), Seq: int64(i + 1)} // numbered as one request numbers them
	}
	out := spreadOverBlocks(es)
	if len(out) != n {
		t.Fatalf("%d of %d", len(out), n)
	}
	seen := map[string]bool{}
	for _, e := range out {
		seen[e.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct of %d", len(seen), n)
	}
	fewest := Shards
	for lo := 0; lo+inFlight <= n; lo += 25 {
		keys := map[int]bool{}
		for _, e := range out[lo : lo+inFlight] {
			keys[CourseShard(CourseBlock(e.Seq))] = true
		}
		fewest = min(fewest, len(keys))
	}
	t.Logf("%d writes in flight always cover at least %d of %d GSI1 keys", inFlight, fewest, Shards)
	if fewest < Shards {
		t.Fatalf("writes in flight cover only %d of %d GSI1 keys", fewest, Shards)
	}
}
