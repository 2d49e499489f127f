package dynamo_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// genEnrollments makes n enrollments of course, newest first from start, three to a
// timestamp (so the id tie-break matters), registered and active unless mut says otherwise.
func genEnrollments(course string, n int, start time.Time, step time.Duration, mut func(i int, e *rollcall.Enrollment)) []*rollcall.Enrollment {
	out := make([]*rollcall.Enrollment, n)
	for i := range out {
		email := fmt.Sprintf("learner%05d@example.com", i)
		created := start.Add(-time.Duration(i/3) * step)
		e := &rollcall.Enrollment{ID: rollcall.EnrollmentID(course, email), CourseID: course, Email: email,
			Username: fmt.Sprintf("learner%05d", i), State: rollcall.StateActive, Role: rollcall.DefaultRole,
			Mode: rollcall.DefaultMode, CreatedAt: created, UpdatedAt: created, Version: 1}
		if mut != nil {
			mut(i, e)
		}
		out[i] = e
	}
	return out
}

// docs/api.md#data-access-and-scale: 10,000 enrollments of one course on one day spread over many partition keys
// of the table and of each index (pure: the keys EncodeEnrollment gives them).
func TestShardSpread(t *testing.T) {
	es := genEnrollments("course-v1:Org+Hot+2026", 10_000, t0, time.Second, nil)
	for i, e := range es {
		e.Seq = int64(i + 1) // as one bulk request numbers them
	}
	keys := map[string]map[string]int{"PK": {}, "GSI1PK": {}, "GSI2PK": {}, "GSI4PK": {}}
	for _, e := range es {
		it := dynamo.EncodeEnrollment(e)
		for attr, counts := range keys {
			v, ok := it[attr].(*types.AttributeValueMemberS)
			if !ok {
				t.Fatalf("%s missing", attr)
			}
			counts[v.Value]++
		}
	}
	for attr, counts := range keys {
		most := 0
		for _, n := range counts {
			most = max(most, n)
		}
		t.Logf("%s: %d distinct keys, at most %d items on one", attr, len(counts), most)
		if len(counts) < 10 {
			t.Errorf("%s: %d distinct partition keys, want at least 10", attr, len(counts))
		}
		// At 1,000 writes a second per key, no key may take a disproportionate share.
		if most > 2*len(es)/dynamo.Shards {
			t.Errorf("%s: one key takes %d of %d items", attr, most, len(es))
		}
	}
	// Open invitations of one course spread the same way over the expiry keys.
	inv := genEnrollments("course-v1:Org+Hot+2026", 10_000, t0, time.Second, func(_ int, e *rollcall.Enrollment) {
		e.Username, e.State, e.ExpiresAt = "", rollcall.StateInvited, t0.Add(14*24*time.Hour)
	})
	x, st := map[string]bool{}, map[string]bool{}
	for _, e := range inv {
		it := dynamo.EncodeEnrollment(e)
		x[it["GSI2PK"].(*types.AttributeValueMemberS).Value] = true
		st[it["GSI4PK"].(*types.AttributeValueMemberS).Value] = true
	}
	if len(x) < 10 || len(st) < 10 {
		t.Errorf("expiry keys: %d distinct; course-state keys: %d distinct", len(x), len(st))
	}
}

func TestShardQueryLimit(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{1, 1}, {7, 6}, {100, 15}, {1000, 82}} {
		if got := dynamo.ShardQueryLimit(tc.size, dynamo.Shards); got != tc.want {
			t.Errorf("ShardQueryLimit(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
	// The margin makes a second round rare: the chance that one of 16 shards holds more than
	// its first fetch of a 100-item page (a binomial tail, summed over the shards).
	n, p, k := 100, 1.0/dynamo.Shards, dynamo.ShardQueryLimit(100, dynamo.Shards)
	tail := 0.0
	for j := k + 1; j <= n; j++ {
		tail += math.Exp(lgamma(n+1)-lgamma(j+1)-lgamma(n-j+1)) * math.Pow(p, float64(j)) * math.Pow(1-p, float64(n-j))
	}
	t.Logf("P(a page of 100 needs a second round) <= %.4f", tail*dynamo.Shards)
	if tail*dynamo.Shards > 0.02 {
		t.Errorf("second round too likely: %.4f", tail*dynamo.Shards)
	}
}

func lgamma(n int) float64 { v, _ := math.Lgamma(float64(n)); return v }

// ensureCourses creates the courses the enrollments belong to (their items hold the
// enrollment counter the store numbers new enrollments from).
func ensureCourses(t *testing.T, s *dynamo.Store, es ...[]*rollcall.Enrollment) {
	t.Helper()
	seen := map[string]bool{}
	for _, batch := range es {
		for _, e := range batch {
			if !seen[e.CourseID] {
				seen[e.CourseID] = true
				if _, err := s.PutCourse(context.Background(), &rollcall.Course{ID: e.CourseID, Title: e.CourseID}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func newStore(t *testing.T, es ...[]*rollcall.Enrollment) (*dynamo.Store, *dynamodb.Client, string) {
	t.Helper()
	db, table := testenv.NewTable(t, localstack.WithoutStream())
	s := dynamo.New(db, table)
	s.Parallel = 16
	ensureCourses(t, s, es...)
	for _, batch := range es {
		// The store numbers new enrollments as they are written, and enrollments are written
		// when they are created: write the fixtures in creation order (ties by id).
		batch = slices.Clone(batch)
		slices.SortFunc(batch, func(a, b *rollcall.Enrollment) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		failed, err := s.PutEnrollments(context.Background(), batch)
		if err != nil || len(failed) > 0 {
			t.Fatalf("put: %v %v", err, failed)
		}
	}
	return s, db, table
}

// expected is what a list must return: filtered, newest first (rollcall.PageOf is the
// reference order: created_at desc, then id desc).
func expected(es []*rollcall.Enrollment, q rollcall.PageQuery, keep func(*rollcall.Enrollment) bool) []string {
	q.Limit, q.After = 0, nil
	return ids(rollcall.PageOf(es, q, keep).Items)
}

func ids(es []*rollcall.Enrollment) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// pageAll follows a list to its end.
func pageAll(t *testing.T, q rollcall.PageQuery, list func(rollcall.PageQuery) (*rollcall.EnrollmentPage, error)) (got []string, pages int) {
	t.Helper()
	for {
		p, err := list(q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(p.Items) > q.Limit {
			t.Fatalf("page of %d items, limit %d", len(p.Items), q.Limit)
		}
		if p.More && len(p.Items) < q.Limit {
			t.Fatalf("short page (%d of %d) says more", len(p.Items), q.Limit)
		}
		got = append(got, ids(p.Items)...)
		if !p.More || len(p.Items) == 0 {
			return got, pages
		}
		b := rollcall.BoundaryOf(p.Items[len(p.Items)-1])
		q.After = &b
	}
}

func TestCoursePagingMergesShards(t *testing.T) {
	course := "course-v1:Org+Merge+2026"
	es := genEnrollments(course, 2500, t0, time.Minute, nil)
	other := genEnrollments("course-v1:Org+Other+2026", 300, t0, time.Second, nil)
	s, _, _ := newStore(t, es, other)
	ctx := context.Background()
	want := expected(es, rollcall.PageQuery{}, nil)
	for _, size := range []int{7, 100, 1000} {
		before := s.Metrics.Snapshot()
		got, pages := pageAll(t, rollcall.PageQuery{Limit: size}, func(q rollcall.PageQuery) (*rollcall.EnrollmentPage, error) {
			return s.CourseEnrollmentsPage(ctx, course, q)
		})
		if !slices.Equal(got, want) {
			t.Fatalf("page size %d: %d items, want the %d in order", size, len(got), len(want))
		}
		m := s.Metrics.Snapshot().Sub(before)
		t.Logf("page size %d: %d pages, %d queries (%.1f a page), %.1f read units", size, pages, m.Requests,
			float64(m.Requests)/float64(pages), m.ReadUnits)
	}
}

func TestCourseFilters(t *testing.T) {
	course := "course-v1:Org+Filter+2026"
	now := t0.Add(time.Hour)
	// 600 enrollments: every 40th registered and active (so the registered filter is sparse and
	// the store has to keep reading), the others invitations open, past expiry, expired,
	// declined, or unenrolled.
	es := genEnrollments(course, 600, t0, time.Minute, func(i int, e *rollcall.Enrollment) {
		switch {
		case i%40 == 0:
		case i%5 == 1:
			e.Username, e.State, e.ExpiresAt = "", rollcall.StateInvited, now.Add(time.Duration(i)*time.Minute)
		case i%5 == 2:
			e.Username, e.State, e.ExpiresAt = "", rollcall.StateInvited, now.Add(-time.Duration(i)*time.Minute)
		case i%5 == 3:
			e.Username, e.State = "", rollcall.StateExpired
		case i%5 == 4:
			e.State = rollcall.StateDeclined
		default:
			e.Username, e.State = "", rollcall.StateUnenrolled
		}
	})
	s, _, _ := newStore(t, es)
	ctx := context.Background()
	list := func(q rollcall.PageQuery) (*rollcall.EnrollmentPage, error) {
		return s.CourseEnrollmentsPage(ctx, course, q)
	}
	counts := map[rollcall.State]int{}
	for _, e := range es {
		counts[e.Effective(now)]++
	}
	for _, st := range []rollcall.State{"", rollcall.StateInvited, rollcall.StateExpired, rollcall.StateActive, rollcall.StateDeclined, rollcall.StateUnenrolled} {
		f := rollcall.ListFilter{State: st, Now: now}
		want := expected(es, rollcall.PageQuery{Filter: f}, nil)
		got, _ := pageAll(t, rollcall.PageQuery{Limit: 13, Filter: f}, list)
		if !slices.Equal(got, want) {
			t.Errorf("state %q: %d items, want %d", st, len(got), len(want))
		}
		if st != "" && len(want) != counts[st] {
			t.Errorf("state %q: reference has %d, effective count %d", st, len(want), counts[st])
		}
	}
	// Registered (so2), with and without a creation window.
	for _, since := range []time.Time{{}, t0.Add(-100 * time.Minute)} {
		f := rollcall.ListFilter{Registered: true, Now: now}
		q := rollcall.PageQuery{Filter: f, Since: since}
		want := expected(es, q, nil)
		q.Limit = 4
		before := s.Metrics.Snapshot()
		got, pages := pageAll(t, q, list)
		if !slices.Equal(got, want) {
			t.Errorf("registered since %v: got %v, want %v", since, got, want)
		}
		m := s.Metrics.Snapshot().Sub(before)
		t.Logf("sparse registered filter since %v: %d items in %d pages, %d queries", since, len(got), pages, m.Requests)
	}
	// A window that ends before the boundary: nothing, without a query.
	b := rollcall.Boundary{CreatedAt: t0.Add(-time.Hour), ID: es[0].ID}
	before := s.Metrics.Snapshot()
	p, err := list(rollcall.PageQuery{Limit: 10, After: &b, Since: t0})
	if err != nil || len(p.Items) != 0 || p.More || s.Metrics.Snapshot().Sub(before).Requests != 0 {
		t.Errorf("empty window: %v %+v", err, p)
	}
}

func TestRecentPaging(t *testing.T) {
	var all []*rollcall.Enrollment
	for c := range 3 {
		course := fmt.Sprintf("course-v1:Org+Recent%d+2026", c)
		all = append(all, genEnrollments(course, 400, t0.Add(time.Duration(c)*time.Second), 7*time.Minute, func(i int, e *rollcall.Enrollment) {
			switch i % 4 {
			case 1:
				e.State = rollcall.StateUnenrolled
			case 2:
				e.Username, e.State, e.ExpiresAt = "", rollcall.StateInvited, t0.Add(time.Hour)
			case 3:
				e.State = rollcall.StateDeclined
			}
		})...)
	}
	s, _, _ := newStore(t, all)
	ctx := context.Background()
	list := func(q rollcall.PageQuery) (*rollcall.EnrollmentPage, error) { return s.RecentEnrollmentsPage(ctx, q) }
	for _, since := range []time.Time{{}, t0.Add(-24 * time.Hour)} {
		q := rollcall.PageQuery{Since: since, Filter: rollcall.ListFilter{Registered: true}}
		want := expected(all, q, nil)
		for _, size := range []int{9, 250} {
			q.Limit = size
			got, _ := pageAll(t, q, list)
			if !slices.Equal(got, want) {
				t.Errorf("since %v size %d: %d items, want %d", since, size, len(got), len(want))
			}
		}
	}
}

// TestListPageCost measures a budget of docs/api.md#performance-budgets: one page of 100 from a large
// course against one plain Query of 100 items, in requests, read units and wall time, at the
// store and through the service (which also reads the course). It logs the numbers (make
// bench is the real measurement; no timing is asserted here) and holds the costs that do not
// depend on timing tight: a page reads the one or two index blocks it needs (measured: 1.19
// queries and 5.0 read units a page, against 4.5 read units for the raw Query).
func TestListPageCost(t *testing.T) {
	course := "course-v1:Org+Big+2026"
	const n = 10_000
	es := genEnrollments(course, n, t0, time.Second, nil)
	_, table := testenv.NewTable(t, localstack.WithoutStream())
	// A client configured as app.Build configures it (keep-alive connections for 16 at once).
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	db := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")},
		func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(testenv.Start(t).DynamoDBEndpoint) })
	s := dynamo.New(db, table)
	ctx := context.Background()
	start := time.Now()
	if _, err := s.PutCourse(ctx, &rollcall.Course{ID: course, Title: "Big"}); err != nil {
		t.Fatal(err)
	}
	if failed, err := s.PutEnrollments(ctx, es); err != nil || len(failed) > 0 {
		t.Fatal(err, failed)
	}
	t.Logf("wrote %d enrollments in %v", n, time.Since(start).Round(time.Millisecond))
	svc := &rollcall.Service{Store: s, Keys: rollcall.NewKeyRing([]byte("test-signing-secret-0123456789abcdef"))}
	staff := rollcall.Actor{Username: "root", Staff: true}

	var rawUnits float64
	raw := func(i int) time.Duration {
		t1 := time.Now()
		out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), IndexName: aws.String(dynamo.IndexCourse),
			KeyConditionExpression:    aws.String("GSI1PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: dynamo.CourseIndexPK(course, i%dynamo.Shards)}},
			ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(100), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		d := time.Since(t1)
		if err != nil || len(out.Items) != 100 {
			t.Fatalf("raw query: %v", err)
		}
		rawUnits = aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
		if i == 1 {
			t.Logf("raw Query of 100 items: 1 request, %.1f read units", aws.ToFloat64(out.ConsumedCapacity.CapacityUnits))
		}
		return d
	}

	const runs = 21
	var storeTimes, svcTimes, rawTimes []time.Duration
	var storeM, svcM dynamo.MetricsSnapshot
	var b *rollcall.Boundary
	cursor := ""
	for i := range runs + 1 {
		before := s.Metrics.Snapshot()
		t1 := time.Now()
		p, err := s.CourseEnrollmentsPage(ctx, course, rollcall.PageQuery{Limit: 100, After: b})
		d := time.Since(t1)
		if err != nil || len(p.Items) != 100 || !p.More {
			t.Fatalf("page: %v, %d items", err, len(p.Items))
		}
		last := rollcall.BoundaryOf(p.Items[99])
		b = &last
		m := s.Metrics.Snapshot().Sub(before)
		if m.Requests > 2 {
			t.Errorf("page %d: %d queries, want at most 2 (the one or two blocks a page spans)", i, m.Requests)
		}

		before = s.Metrics.Snapshot()
		t2 := time.Now()
		res, err := svc.ListCourseEnrollments(ctx, staff, course, rollcall.CourseListQuery{PageSize: "100", Cursor: cursor})
		d2 := time.Since(t2)
		if err != nil || len(res.Items) != 100 || res.Next == "" {
			t.Fatalf("service page: %v", err)
		}
		cursor = res.Next
		m2 := s.Metrics.Snapshot().Sub(before)
		if m2.Requests > 3 {
			t.Errorf("service page %d: %d requests, want at most 3 (the page and the course)", i, m2.Requests)
		}

		d3 := raw(i)
		if i == 0 {
			continue // warm-up
		}
		storeTimes, svcTimes, rawTimes = append(storeTimes, d), append(svcTimes, d2), append(rawTimes, d3)
		storeM.Requests, storeM.ReadUnits = storeM.Requests+m.Requests, storeM.ReadUnits+m.ReadUnits
		svcM.Requests, svcM.ReadUnits = svcM.Requests+m2.Requests, svcM.ReadUnits+m2.ReadUnits
	}
	t.Logf("store page of 100 from %d: %.2f queries, %.2f read units a page (mean of %d pages)", n,
		float64(storeM.Requests)/runs, storeM.ReadUnits/runs, runs)
	t.Logf("service page of 100 (with the course read): %.2f requests, %.2f read units a page", float64(svcM.Requests)/runs, svcM.ReadUnits/runs)
	mr := median(rawTimes)
	t.Logf("median wall time: store page %v (%.2fx), service page %v (%.2fx), raw Query %v", median(storeTimes),
		float64(median(storeTimes))/float64(mr), median(svcTimes), float64(median(svcTimes))/float64(mr), mr)
	if mean := float64(storeM.Requests) / runs; mean > 1.5 {
		t.Errorf("%.2f queries a page, want at most 1.5 (most pages lie in one block)", mean)
	}
	if units := storeM.ReadUnits / runs; units > 1.5*rawUnits {
		t.Errorf("%.2f read units a page, want at most 1.5x the raw Query's %.1f", units, rawUnits)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// A sparse state in a large course costs its own items: a page of the 5 open invitations among
// 3,000 enrollments reads the state's shards, not every block of the course.
func TestSparseStateFilterCost(t *testing.T) {
	course := "course-v1:Org+Sparse+2026"
	now := t0.Add(time.Hour)
	es := genEnrollments(course, 3000, t0, time.Second, func(i int, e *rollcall.Enrollment) {
		if i%600 == 7 {
			e.Username, e.State, e.ExpiresAt = "", rollcall.StateInvited, now.Add(24*time.Hour)
		}
	})
	s, _, _ := newStore(t, es)
	f := rollcall.ListFilter{State: rollcall.StateInvited, Now: now}
	want := expected(es, rollcall.PageQuery{Filter: f}, nil)
	before := s.Metrics.Snapshot()
	p, err := s.CourseEnrollmentsPage(context.Background(), course, rollcall.PageQuery{Limit: 100, Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	m := s.Metrics.Snapshot().Sub(before)
	got := make([]string, len(p.Items))
	for i, e := range p.Items {
		got[i] = e.ID
	}
	if !slices.Equal(got, want) || len(want) != 5 || p.More {
		t.Fatalf("got %d items (more %v), want the 5 in order", len(got), p.More)
	}
	t.Logf("5 invitations among 3,000: %d queries, %.1f read units", m.Requests, m.ReadUnits)
	// One query a shard, each reading the few items of its shard (the block walk read all
	// 3,000 enrollments: 7 queries and 124 read units, measured).
	if m.Requests > dynamo.Shards || m.ReadUnits > float64(dynamo.Shards) {
		t.Fatalf("%d queries and %.1f read units for 5 items", m.Requests, m.ReadUnits)
	}
}
