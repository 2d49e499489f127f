package dynamo

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Listing: a course's enrollments live in GSI1 in numbered blocks (CourseEnrollmentsPage);
// the registered enrollments of all courses in GSI2 (R#), spread over Shards partition keys
// by hash and sorted by <created>#<id>. Such a page queries every shard newest first (in
// parallel, each for a little more than its share of the page) and merges them; a shard that
// runs dry while it has more is read again, alone, from where it stopped, until the page is
// full or every shard is exhausted.

// maxQueryLimit bounds one Query's Limit.
const maxQueryLimit = 1000

// CourseEnrollmentsPage implements rollcall.ListingStore on GSI1. A course's enrollments are
// numbered (seq) and cut into blocks of BlockSize, block b in shard b mod Shards (keys.go).
// A page walks the blocks down from the boundary, querying in parallel just the blocks that
// can fill it: one or two Queries for a page of 100 when nothing is filtered. Filters and
// `days` are applied as the items come (a filtered list reads more blocks a round, doubling).
func (s *Store) CourseEnrollmentsPage(ctx context.Context, courseID string, q rollcall.PageQuery) (*rollcall.EnrollmentPage, error) {
	if q.Filter.State != "" && !q.Filter.Registered && q.Since.IsZero() {
		return s.courseStatePage(ctx, courseID, q)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = rollcall.DefaultPageSize
	}
	// Seq follows creation time but may lag it by the length of one request, so `days`
	// stops a little past the cut-off rather than at the first older item.
	stopBefore := time.Time{}
	if !q.Since.IsZero() {
		stopBefore = q.Since.Add(-time.Minute)
		if q.After != nil && q.After.CreatedAt.Before(stopBefore) {
			return &rollcall.EnrollmentPage{}, nil // the window ends above the boundary
		}
	}
	var upper int64 // the page holds seqs below upper
	if q.After != nil && q.After.Seq > 0 {
		upper = q.After.Seq
	} else {
		top, err := s.courseSeq(ctx, courseID)
		if err != nil {
			return nil, fmt.Errorf("course enrollments %s: %w", courseID, err)
		}
		upper = top + 1
	}
	filtered := q.Filter.Registered || q.Filter.State != ""
	out := make([]*rollcall.Enrollment, 0, limit)
	block := CourseBlock(upper - 1)
	perRound := 2
	for len(out) < limit && block >= 0 && upper > 1 {
		need := limit - len(out)
		// The blocks of this round: enough to fill the page if they are dense, and more
		// rounds' worth when a filter thins them.
		var blocks []int64
		covered := int64(0)
		for b := block; b >= 0; b-- {
			hi := min(upper-1, (b+1)*BlockSize-1)
			covered += hi - max(b*BlockSize, 1) + 1
			blocks = append(blocks, b)
			if (!filtered && covered >= int64(need)) || (filtered && len(blocks) >= perRound) {
				break
			}
		}
		results := make([][]*rollcall.Enrollment, len(blocks))
		err := parallel(ctx, len(blocks), func(ctx context.Context, i int) error {
			b := blocks[i]
			hi := min(upper-1, (b+1)*BlockSize-1)
			lim := int32(BlockSize)
			if !filtered {
				lim = int32(min(need, BlockSize))
			}
			items, err := s.queryBlock(ctx, courseID, b, max(b*BlockSize, 1), hi, lim)
			results[i] = items
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("course enrollments %s: %w", courseID, err)
		}
		stop := false
		for _, items := range results {
			for _, e := range items {
				if len(out) == limit {
					break
				}
				if !q.Since.IsZero() && e.CreatedAt.Before(q.Since) {
					if e.CreatedAt.Before(stopBefore) {
						stop = true
						break
					}
					continue
				}
				if q.Filter.Matches(e) {
					out = append(out, e)
				}
			}
			if stop {
				break
			}
		}
		if stop {
			return &rollcall.EnrollmentPage{Items: out}, nil
		}
		block = blocks[len(blocks)-1] - 1
		upper = (block + 1) * BlockSize
		perRound = min(perRound*2, Shards)
	}
	more := len(out) == limit && out[len(out)-1].Seq > 1
	return &rollcall.EnrollmentPage{Items: out, More: more}, nil
}

// courseStatePage is a course's list filtered by state, on GSI4: the shards of each stored
// state that can have that effective state (an open invitation past its expiry counts as
// expired until the expiry job marks it), merged newest first. A sparse state costs what its
// own items cost, not a walk over every block of the course.
func (s *Store) courseStatePage(ctx context.Context, courseID string, q rollcall.PageQuery) (*rollcall.EnrollmentPage, error) {
	stored := []rollcall.State{q.Filter.State}
	if q.Filter.State == rollcall.StateExpired {
		stored = append(stored, rollcall.StateInvited)
	}
	pks := make([]string, 0, len(stored)*Shards)
	for _, st := range stored {
		for i := range Shards {
			pks = append(pks, CourseStateIndexPK(courseID, st, i))
		}
	}
	var hi string
	if q.After != nil && q.After.Seq > 0 {
		hi = SeqSK(q.After.Seq)
	}
	iq, _ := buildIndexQuery(IndexState, "GSI4PK", "GSI4SK", "", hi, q.Filter)
	page, err := s.mergedPage(ctx, iq, pks, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("course enrollments %s (%s): %w", courseID, q.Filter.State, err)
	}
	return page, nil
}

// queryBlock reads the enrollments of one block with lo <= seq <= hi, newest first.
func (s *Store) queryBlock(ctx context.Context, courseID string, block, lo, hi int64, limit int32) ([]*rollcall.Enrollment, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(IndexCourse),
		KeyConditionExpression: aws.String("GSI1PK = :pk AND GSI1SK BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(CourseIndexPK(courseID, CourseShard(block))), ":lo": str(SeqSK(lo)), ":hi": str(SeqSK(hi))},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(limit),
	}
	var out []*rollcall.Enrollment
	for {
		res, err := s.db().Query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, it := range res.Items {
			out = append(out, DecodeEnrollment(it))
		}
		if len(res.LastEvaluatedKey) == 0 || int32(len(out)) >= limit {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// parallel runs fn(0..n-1) at once; the first error cancels the rest.
func parallel(ctx context.Context, n int, fn func(context.Context, int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// RecentEnrollmentsPage implements rollcall.ListingStore on GSI2 (R# holds exactly the
// registered, active or unenrolled, enrollments, so Filter.Registered needs no filter).
func (s *Store) RecentEnrollmentsPage(ctx context.Context, q rollcall.PageQuery) (*rollcall.EnrollmentPage, error) {
	pks := make([]string, Shards)
	for i := range pks {
		pks[i] = RecentIndexPK(i)
	}
	f := q.Filter
	f.Registered = false
	lo, hi := timeRange(q)
	iq, empty := buildIndexQuery(IndexTime, "GSI2PK", "GSI2SK", lo, hi, f)
	if empty {
		return &rollcall.EnrollmentPage{}, nil
	}
	page, err := s.mergedPage(ctx, iq, pks, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("recent enrollments: %w", err)
	}
	return page, nil
}

// ShardQueryLimit is the Limit of the first Query of each shard for a page of pageSize over
// shards partitions: its share plus a margin of about two standard deviations of how many of
// the page's items one shard holds (a binomial), so that a second round is rarely needed.
func ShardQueryLimit(pageSize, shards int) int {
	share := float64(pageSize) / float64(shards)
	n := int(math.Ceil(share)) + int(math.Ceil(2*math.Sqrt(share))) + 3
	return min(n, pageSize, maxQueryLimit)
}

// row is one item of a shard, with its index sort key (the merge order).
type row struct {
	sk string
	e  *rollcall.Enrollment
}

// shardStream is where one shard's query stands.
type shardStream struct {
	pk      string
	rows    []row // fetched, filtered, not yet merged
	lek     map[string]types.AttributeValue
	done    bool // nothing after lek
	scanned int  // items read before the filter, over all fetches
	matched int  // items that passed it
}

// indexQuery is a page's query on one index, shared by its shards.
type indexQuery struct {
	index, pkAttr, skAttr string
	keyCond, filter       string
	names                 map[string]string
	values                map[string]types.AttributeValue
	skip                  string // a sort key never to return (the boundary, with BETWEEN)
	check                 rollcall.ListFilter
}

// mergedPage reads a page of limit items from the partitions pks of one index, newest (the
// highest sort key) first.
func (s *Store) mergedPage(ctx context.Context, iq *indexQuery, pks []string, limit int) (*rollcall.EnrollmentPage, error) {
	if limit <= 0 {
		limit = rollcall.DefaultPageSize
	}
	streams := make([]*shardStream, len(pks))
	for i, pk := range pks {
		streams[i] = &shardStream{pk: pk}
	}
	first := int32(ShardQueryLimit(limit, len(pks)))
	if err := s.fetchShards(ctx, iq, streams, func(*shardStream) int32 { return first }); err != nil {
		return nil, err
	}

	out := make([]*rollcall.Enrollment, 0, limit)
	var dry []*shardStream
	for len(out) < limit {
		// A shard with nothing fetched but more stored must be read before the next pick:
		// its next item may be the newest of all.
		dry = dry[:0]
		for _, st := range streams {
			if len(st.rows) == 0 && !st.done {
				dry = append(dry, st)
			}
		}
		if len(dry) > 0 {
			remaining := limit - len(out)
			err := s.fetchShards(ctx, iq, dry, func(st *shardStream) int32 { return refillLimit(remaining, st) })
			if err != nil {
				return nil, err
			}
			continue
		}
		var best *shardStream
		for _, st := range streams {
			if len(st.rows) > 0 && (best == nil || st.rows[0].sk > best.rows[0].sk) {
				best = st
			}
		}
		if best == nil {
			break // every shard is exhausted
		}
		out = append(out, best.rows[0].e)
		best.rows = best.rows[1:]
	}
	more := false
	for _, st := range streams {
		if len(st.rows) > 0 || !st.done {
			more = true
			break
		}
	}
	return &rollcall.EnrollmentPage{Items: out, More: more}, nil
}

// refillLimit is the Limit of a shard's next Query: what the page still needs, scaled up
// by how much of the shard the filter has dropped so far.
func refillLimit(remaining int, st *shardStream) int32 {
	n := float64(max(remaining, 1))
	if st.scanned > st.matched {
		n *= float64(st.scanned+1) / float64(st.matched+1)
	}
	return int32(min(math.Ceil(n), maxQueryLimit))
}

// fetchShards reads the next items of each stream, all at once.
func (s *Store) fetchShards(ctx context.Context, iq *indexQuery, streams []*shardStream, limit func(*shardStream) int32) error {
	return parallel(ctx, len(streams), func(ctx context.Context, i int) error {
		return s.fetchShard(ctx, iq, streams[i], limit(streams[i]))
	})
}

func (s *Store) fetchShard(ctx context.Context, iq *indexQuery, st *shardStream, limit int32) error {
	values := make(map[string]types.AttributeValue, len(iq.values)+1)
	for k, v := range iq.values {
		values[k] = v
	}
	values[":pk"] = str(st.pk)
	in := &dynamodb.QueryInput{
		TableName:                 &s.Table,
		IndexName:                 aws.String(iq.index),
		KeyConditionExpression:    aws.String(iq.keyCond),
		ExpressionAttributeNames:  iq.names,
		ExpressionAttributeValues: values,
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(limit),
		ExclusiveStartKey:         st.lek,
	}
	if iq.filter != "" {
		in.FilterExpression = aws.String(iq.filter)
	}
	res, err := s.db().Query(ctx, in)
	if err != nil {
		return err
	}
	st.scanned += int(res.ScannedCount)
	for _, it := range res.Items {
		sk := getS(it, iq.skAttr)
		if sk == iq.skip {
			continue
		}
		e := DecodeEnrollment(it)
		if !iq.check.Matches(e) { // the filter expression's twin, in case they ever differ
			continue
		}
		st.matched++
		st.rows = append(st.rows, row{sk: sk, e: e})
	}
	st.lek = res.LastEvaluatedKey
	st.done = len(st.lek) == 0
	return nil
}

// timeRange is the GSI2 sort-key range of a page: created at or after Since (lo), strictly
// before the boundary (hi); "" leaves that end open.
func timeRange(q rollcall.PageQuery) (lo, hi string) {
	if !q.Since.IsZero() {
		lo = FormatTime(q.Since)
	}
	if q.After != nil {
		hi = TimeSK(q.After.CreatedAt, q.After.ID)
	}
	return lo, hi
}

// buildIndexQuery turns a sort-key range (lo inclusive, hi exclusive, "" = open) and a filter
// into key condition and filter expression; empty is true when no item can match.
func buildIndexQuery(index, pkAttr, skAttr, lo, hi string, f rollcall.ListFilter) (iq *indexQuery, empty bool) {
	iq = &indexQuery{index: index, pkAttr: pkAttr, skAttr: skAttr, check: f,
		names: map[string]string{"#pk": pkAttr}, values: map[string]types.AttributeValue{}}
	switch {
	case lo == "" && hi == "":
		iq.keyCond = "#pk = :pk"
	case lo == "":
		iq.keyCond = "#pk = :pk AND #sk < :hi"
	case hi == "":
		iq.keyCond = "#pk = :pk AND #sk >= :lo"
	default:
		if lo > hi {
			return nil, true
		}
		// BETWEEN is inclusive at both ends; the boundary item itself is skipped.
		iq.keyCond = "#pk = :pk AND #sk BETWEEN :lo AND :hi"
		iq.skip = hi
	}
	if lo != "" || hi != "" {
		iq.names["#sk"] = skAttr
	}
	if lo != "" {
		iq.values[":lo"] = str(lo)
	}
	if hi != "" {
		iq.values[":hi"] = str(hi)
	}

	var conds []string
	if f.Registered {
		iq.names["#u"] = "username"
		iq.names["#st"] = "state"
		iq.values[":active"] = str(string(rollcall.StateActive))
		iq.values[":unenrolled"] = str(string(rollcall.StateUnenrolled))
		iq.values[":completed"] = str(string(rollcall.StateCompleted))
		conds = append(conds, "attribute_exists(#u) AND #st IN (:active, :unenrolled, :completed)")
	}
	if f.State != "" {
		iq.names["#st"] = "state"
		now := str(FormatTime(f.Now))
		switch f.State {
		case rollcall.StateInvited: // open and not past expiry
			iq.names["#x"] = "expires_at"
			iq.values[":invited"] = str(string(rollcall.StateInvited))
			iq.values[":now"] = now
			conds = append(conds, "#st = :invited AND (attribute_not_exists(#x) OR #x > :now)")
		case rollcall.StateExpired: // marked expired, or open past expiry
			iq.names["#x"] = "expires_at"
			iq.values[":invited"] = str(string(rollcall.StateInvited))
			iq.values[":expired"] = str(string(rollcall.StateExpired))
			iq.values[":now"] = now
			conds = append(conds, "(#st = :expired OR (#st = :invited AND #x <= :now))")
		default:
			iq.values[":state"] = str(string(f.State))
			conds = append(conds, "#st = :state")
		}
	}
	for i, c := range conds {
		if i > 0 {
			iq.filter += " AND "
		}
		iq.filter += c
	}
	return iq, false
}
