package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Metrics counts what the store asks of DynamoDB: requests and the capacity they consumed
// (from ReturnConsumedCapacity), split into the table's and the indexes' write units.
type Metrics struct {
	Requests        atomic.Int64
	readMilli       atomic.Int64
	tableWriteMilli atomic.Int64
	indexWriteMilli atomic.Int64
}

// Snapshot is a copy of the counters.
type MetricsSnapshot struct {
	Requests        int64   `json:"requests"`
	ReadUnits       float64 `json:"read_units"`
	TableWriteUnits float64 `json:"table_write_units"`
	IndexWriteUnits float64 `json:"index_write_units"`
}

// WriteUnits is the total of table and index write units.
func (m MetricsSnapshot) WriteUnits() float64 { return m.TableWriteUnits + m.IndexWriteUnits }

// Sub is m - o.
func (m MetricsSnapshot) Sub(o MetricsSnapshot) MetricsSnapshot {
	return MetricsSnapshot{m.Requests - o.Requests, m.ReadUnits - o.ReadUnits, m.TableWriteUnits - o.TableWriteUnits, m.IndexWriteUnits - o.IndexWriteUnits}
}

// Snapshot reads the counters.
func (m *Metrics) Snapshot() MetricsSnapshot {
	return MetricsSnapshot{Requests: m.Requests.Load(), ReadUnits: float64(m.readMilli.Load()) / 1000,
		TableWriteUnits: float64(m.tableWriteMilli.Load()) / 1000, IndexWriteUnits: float64(m.indexWriteMilli.Load()) / 1000}
}

func (m *Metrics) read(cc ...types.ConsumedCapacity) {
	m.Requests.Add(1)
	for _, c := range cc {
		m.readMilli.Add(int64(aws.ToFloat64(c.CapacityUnits) * 1000))
	}
}

func (m *Metrics) write(cc ...types.ConsumedCapacity) {
	m.Requests.Add(1)
	for _, c := range cc {
		total := aws.ToFloat64(c.CapacityUnits)
		table := total
		if c.Table != nil {
			table = aws.ToFloat64(c.Table.CapacityUnits)
		}
		m.tableWriteMilli.Add(int64(table * 1000))
		m.indexWriteMilli.Add(int64((total - table) * 1000))
	}
}

// Store is rollcall.Store on DynamoDB.
type Store struct {
	DB      API
	Table   string
	Metrics *Metrics
	// Parallel is how many batch requests run at once (default 8).
	Parallel int
}

// New returns a store on table.
func New(db API, table string) *Store {
	return &Store{DB: db, Table: table, Metrics: &Metrics{}, Parallel: 8}
}

var _ rollcall.Store = (*Store)(nil)

func (s *Store) parallel() int {
	if s.Parallel > 0 {
		return s.Parallel
	}
	return 8
}

// get reads one item (strongly consistent); nil if missing.
func (s *Store) get(ctx context.Context, pk, sk string) (item, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(pk, sk),
		ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		return nil, err
	}
	s.Metrics.read(ccOf(out.ConsumedCapacity)...)
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

func ccOf(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

// batchGet reads keys (strongly consistent) in BatchGetItem calls of 100, several at once,
// retrying unprocessed keys. A key named twice is read once (BatchGetItem rejects a call
// that names a key twice).
func (s *Store) batchGet(ctx context.Context, keys []item) ([]item, error) {
	const chunk = 100
	seen := make(map[string]bool, len(keys))
	keys = slices.DeleteFunc(slices.Clone(keys), func(k item) bool {
		d := describe(k)
		dup := seen[d]
		seen[d] = true
		return dup
	})
	var (
		mu  sync.Mutex
		out = make([]item, 0, len(keys))
	)
	err := s.forChunks(ctx, len(keys), chunk, func(ctx context.Context, lo, hi int) error {
		pending := keys[lo:hi]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return err
				}
			}
			res, err := s.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems:           map[string]types.KeysAndAttributes{s.Table: {Keys: pending, ConsistentRead: aws.Bool(true)}},
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			})
			if err != nil {
				return err
			}
			s.Metrics.read(res.ConsumedCapacity...)
			mu.Lock()
			out = append(out, res.Responses[s.Table]...)
			mu.Unlock()
			pending = res.UnprocessedKeys[s.Table].Keys
			if attempt > 10 && len(pending) > 0 {
				return fmt.Errorf("batch get: %d keys unprocessed after retries", len(pending))
			}
		}
		return nil
	})
	return out, err
}

// forChunks runs fn over [0,n) in chunks, Parallel at a time; the first error cancels the rest.
func (s *Store) forChunks(ctx context.Context, n, size int, fn func(ctx context.Context, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.parallel())
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, lo, hi); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(min(1<<min(attempt, 6), 64)) * 10 * time.Millisecond
	d += time.Duration(rand.Int64N(int64(d)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ---------------------------------------------------------------------------------------------
// Courses

func (s *Store) GetCourse(ctx context.Context, id string) (*rollcall.Course, error) {
	it, err := s.get(ctx, CoursePK(id), skCourse)
	if err != nil {
		return nil, fmt.Errorf("get course %s: %w", id, err)
	}
	if it == nil {
		return nil, rollcall.ErrNotFound
	}
	return decodeCourse(it), nil
}

func (s *Store) GetCourses(ctx context.Context, ids []string) (map[string]*rollcall.Course, error) {
	keys := make([]item, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, key(CoursePK(id), skCourse))
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get courses: %w", err)
	}
	out := make(map[string]*rollcall.Course, len(items))
	for _, it := range items {
		c := decodeCourse(it)
		out[c.ID] = c
	}
	return out, nil
}

func (s *Store) PutCourse(ctx context.Context, c *rollcall.Course) (bool, error) {
	// An update, not a put: the item also holds the enrollment counter (enr_seq).
	fields := courseFields(c)
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var sets []string
	i := 0
	for k, v := range fields {
		names[fmt.Sprintf("#f%d", i)] = k
		values[fmt.Sprintf(":f%d", i)] = v
		sets = append(sets, fmt.Sprintf("#f%d = :f%d", i, i))
		i++
	}
	sort.Strings(sets)
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key(CoursePK(c.ID), skCourse),
		UpdateExpression: aws.String("SET " + strings.Join(sets, ", ")), ExpressionAttributeNames: names,
		ExpressionAttributeValues: values, ReturnValues: types.ReturnValueUpdatedOld,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes})
	if err != nil {
		return false, fmt.Errorf("put course %s: %w", c.ID, err)
	}
	s.Metrics.write(ccOf(out.ConsumedCapacity)...)
	return len(out.Attributes) == 0, nil
}

// reserveSeqs numbers the enrollments that have no Seq yet: one ADD on each course's counter
// (the courses at the same time) reserves a contiguous range. A reservation whose write then
// fails leaves a gap, which the lists skip.
func (s *Store) reserveSeqs(ctx context.Context, es []*rollcall.Enrollment) error {
	byCourse := map[string][]*rollcall.Enrollment{}
	var courses []string
	for _, e := range es {
		if e.Seq == 0 {
			if byCourse[e.CourseID] == nil {
				courses = append(courses, e.CourseID)
			}
			byCourse[e.CourseID] = append(byCourse[e.CourseID], e)
		}
	}
	return s.forChunks(ctx, len(courses), 1, func(ctx context.Context, i, _ int) error {
		c := courses[i]
		news := byCourse[c]
		out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key(CoursePK(c), skCourse),
			UpdateExpression:          aws.String("ADD enr_seq :n"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(len(news)))},
			ReturnValues:              types.ReturnValueUpdatedNew,
			ReturnConsumedCapacity:    types.ReturnConsumedCapacityIndexes})
		if err != nil {
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				return fmt.Errorf("reserve seq in %s: %w", c, rollcall.ErrNotFound)
			}
			return fmt.Errorf("reserve seq in %s: %w", c, err)
		}
		s.Metrics.write(ccOf(out.ConsumedCapacity)...)
		last := getN(out.Attributes, "enr_seq")
		for j, e := range news {
			e.Seq = last - int64(len(news)) + 1 + int64(j)
		}
		return nil
	})
}

// courseSeq is the highest seq handed out in a course (0 if none).
func (s *Store) courseSeq(ctx context.Context, courseID string) (int64, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(CoursePK(courseID), skCourse),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("enr_seq"),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		return 0, err
	}
	s.Metrics.read(ccOf(out.ConsumedCapacity)...)
	return getN(out.Item, "enr_seq"), nil
}

// ---------------------------------------------------------------------------------------------
// Users

// CreateUser writes the username item and the email item (each must be new) and counts the
// registration in one of RegMarkShards counters, all in one transaction, so RegistrationMark
// changes exactly when a user exists that did not before. Two registrations that meet on a
// counter conflict; the loser retries.
func (s *Store) CreateUser(ctx context.Context, u *rollcall.User) error {
	cond := aws.String("attribute_not_exists(PK)")
	shard := ShardOf(rollcall.PersonHash(u.Email)) % RegMarkShards
	in := &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: &s.Table, Item: encodeUser(UserPK(u.Username), u), ConditionExpression: cond}},
			{Put: &types.Put{TableName: &s.Table, Item: encodeUser(PersonPK(u.Email), u), ConditionExpression: cond}},
			{Update: &types.Update{TableName: &s.Table, Key: key(RegMarkPK(shard), skRegMark),
				UpdateExpression:          aws.String("ADD n :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)}}},
		},
		ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes,
	}
	for attempt := 0; ; attempt++ {
		out, err := s.DB.TransactWriteItems(ctx, in)
		if err == nil {
			s.Metrics.write(out.ConsumedCapacity...)
			return nil
		}
		var tc *types.TransactionCanceledException
		if errors.As(err, &tc) {
			s.Metrics.Requests.Add(1)
			reasons := tc.CancellationReasons
			if len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
				return &rollcall.ConflictError{Detail: "A user with this username already exists."}
			}
			if len(reasons) > 1 && aws.ToString(reasons[1].Code) == "ConditionalCheckFailed" {
				return &rollcall.ConflictError{Detail: "A user with this email address already exists."}
			}
			if attempt < 5 && conflicted(reasons) {
				if err := backoff(ctx, attempt+1); err != nil {
					return fmt.Errorf("create user %s: %w", u.Username, err)
				}
				continue
			}
		}
		return fmt.Errorf("create user %s: %w", u.Username, err)
	}
}

func conflicted(reasons []types.CancellationReason) bool {
	for _, r := range reasons {
		if aws.ToString(r.Code) == "TransactionConflict" {
			return true
		}
	}
	return false
}

// RegistrationMark reads the registration counters (one BatchGetItem, strongly consistent)
// as "n0,n1,...": CreateUser bumps one in the transaction that creates the user.
func (s *Store) RegistrationMark(ctx context.Context) (string, error) {
	keys := make([]item, RegMarkShards)
	shardOf := make(map[string]int, RegMarkShards)
	for i := range keys {
		keys[i] = key(RegMarkPK(i), skRegMark)
		shardOf[RegMarkPK(i)] = i
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return "", fmt.Errorf("registration mark: %w", err)
	}
	counts := make([]int64, RegMarkShards)
	for _, it := range items {
		if i, ok := shardOf[getS(it, "PK")]; ok {
			counts[i] = getN(it, "n")
		}
	}
	var b strings.Builder
	for i, c := range counts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(c, 10))
	}
	return b.String(), nil
}

func (s *Store) GetUser(ctx context.Context, username string) (*rollcall.User, error) {
	if !rollcall.ValidUsername(username) {
		return nil, rollcall.ErrNotFound // not a key any user has (nor one DynamoDB accepts)
	}
	it, err := s.get(ctx, UserPK(username), skUser)
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", username, err)
	}
	if it == nil {
		return nil, rollcall.ErrNotFound
	}
	return decodeUser(it), nil
}

func (s *Store) GetUserByEmail(ctx context.Context, email string) (*rollcall.User, error) {
	it, err := s.get(ctx, PersonPK(email), skUser)
	if err != nil {
		return nil, fmt.Errorf("get user by email: %w", err)
	}
	if it == nil {
		return nil, rollcall.ErrNotFound
	}
	return decodeUser(it), nil
}

func (s *Store) ResolveIdentifiers(ctx context.Context, identifiers []string) (map[string]*rollcall.User, error) {
	keys := make([]item, 0, len(identifiers))
	byPK := map[string][]string{}
	for _, id := range rollcall.Resolvable(identifiers) {
		var pk string
		if strings.Contains(id, "@") {
			pk = PersonPK(id)
		} else {
			pk = UserPK(id)
		}
		if byPK[pk] == nil {
			keys = append(keys, key(pk, skUser))
		}
		byPK[pk] = append(byPK[pk], id)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("resolve identifiers: %w", err)
	}
	out := make(map[string]*rollcall.User, len(items))
	for _, it := range items {
		u := decodeUser(it)
		for _, id := range byPK[getS(it, "PK")] {
			out[id] = u
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------------------------
// Enrollments: reads

func (s *Store) GetEnrollment(ctx context.Context, id string) (*rollcall.Enrollment, error) {
	if !rollcall.ValidEnrollmentID(id) {
		return nil, rollcall.ErrNotFound
	}
	pk, sk := EnrollmentKey(id)
	it, err := s.get(ctx, pk, sk)
	if err != nil {
		return nil, fmt.Errorf("get enrollment %s: %w", id, err)
	}
	if it == nil {
		return nil, rollcall.ErrNotFound
	}
	return DecodeEnrollment(it), nil
}

func (s *Store) GetEnrollments(ctx context.Context, ids []string) (map[string]*rollcall.Enrollment, error) {
	keys := make([]item, 0, len(ids))
	for _, id := range ids {
		if !rollcall.ValidEnrollmentID(id) {
			continue
		}
		pk, sk := EnrollmentKey(id)
		keys = append(keys, key(pk, sk))
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get enrollments: %w", err)
	}
	out := make(map[string]*rollcall.Enrollment, len(items))
	for _, it := range items {
		e := DecodeEnrollment(it)
		out[e.ID] = e
	}
	return out, nil
}

func (s *Store) PersonEnrollments(ctx context.Context, email string) ([]*rollcall.Enrollment, error) {
	var out []*rollcall.Enrollment
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :e)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(PersonPK(email)), ":e": str(pfxEnrollment)},
		ConsistentRead: aws.Bool(true),
	}, func(it item) bool {
		out = append(out, DecodeEnrollment(it))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("person enrollments: %w", err)
	}
	return out, nil
}

// queryAll pages through a query, calling fn per item until it returns false.
func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, fn func(item) bool) error {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	for {
		out, err := s.DB.Query(ctx, in)
		if err != nil {
			return err
		}
		s.Metrics.read(ccOf(out.ConsumedCapacity)...)
		for _, it := range out.Items {
			if !fn(it) {
				return nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ---------------------------------------------------------------------------------------------
// Enrollments: writes

// LockCourses takes the leases of all the courses in sorted order (so that two requests never
// wait for each other in a cycle). When one is held by another request it waits for it a
// little (holdWait) while keeping the leases it has; if it is still busy then, it releases
// them, waits for that one (with reads) and starts again. Keeping leases while waiting long
// would make everyone queued on them wait too (a convoy); giving them up at once would
// starve a request that needs several courses free together. A lease past its time is free,
// so a crashed holder blocks for at most ttl, or until its ctx's deadline (see leaseUntil).
// Each request attempt is its own owner.
func (s *Store) LockCourses(ctx context.Context, courses []string, owner string, ttl, wait time.Duration) (func(context.Context), error) {
	const holdWait = 250 * time.Millisecond
	sorted := append([]string(nil), courses...)
	sort.Strings(sorted)
	deadline := time.Now().Add(wait)
	var held []string
	for {
		more, busy, err := s.tryLeases(ctx, sorted[len(held):], owner, ttl)
		held = append(held, more...)
		if err != nil {
			s.releaseLeases(context.WithoutCancel(ctx), held, owner)
			return nil, err
		}
		if busy == "" {
			return func(ctx context.Context) { s.releaseLeases(ctx, held, owner) }, nil
		}
		if len(held) > 0 {
			short := time.Now().Add(holdWait)
			if deadline.Before(short) {
				short = deadline
			}
			if s.awaitLease(ctx, busy, short) == nil {
				continue
			}
			s.releaseLeases(context.WithoutCancel(ctx), held, owner)
			held = nil
		}
		if err := s.awaitLease(ctx, busy, deadline); err != nil {
			return nil, fmt.Errorf("lock course %s: %w", busy, err)
		}
	}
}

// leaseMargin is how long a lease outlives its holder's deadline: long enough for a write
// already sent when the holder stopped to land.
const leaseMargin = 2 * time.Second

// leaseUntil is when a lease taken now expires: after ttl, or at the holder's deadline (plus
// leaseMargin) if that comes first. Lambda stops an invocation at its deadline, so a holder
// that crashes or times out blocks its courses until then, not for the whole ttl.
func leaseUntil(ctx context.Context, now time.Time, ttl time.Duration) time.Time {
	until := now.Add(ttl)
	if d, ok := ctx.Deadline(); ok && d.Add(leaseMargin).Before(until) {
		until = d.Add(leaseMargin)
	}
	return until
}

// tryLeases takes the leases in order until one is held by someone else (busy).
func (s *Store) tryLeases(ctx context.Context, courses []string, owner string, ttl time.Duration) (held []string, busy string, err error) {
	for _, c := range courses {
		now := time.Now()
		until := leaseUntil(ctx, now, ttl)
		it := key(LeasePK(c), skLease)
		it["owner"] = str(owner)
		it["until"] = num(until.UnixMilli())
		it["ttl"] = num(until.Unix() + 3600)
		out, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: it,
			ConditionExpression:       aws.String("attribute_not_exists(PK) OR #u < :now OR #o = :o"),
			ExpressionAttributeNames:  map[string]string{"#u": "until", "#o": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":o": str(owner)},
			ReturnConsumedCapacity:    types.ReturnConsumedCapacityIndexes})
		if err == nil {
			s.Metrics.write(ccOf(out.ConsumedCapacity)...)
			held = append(held, c)
			continue
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			s.Metrics.Requests.Add(1)
			return held, c, nil
		}
		return held, "", fmt.Errorf("lock course %s: %w", c, err)
	}
	return held, "", nil
}

// releaseLeases deletes the leases the owner holds (best effort: they expire anyway).
func (s *Store) releaseLeases(ctx context.Context, courses []string, owner string) {
	for _, c := range courses {
		out, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.Table, Key: key(LeasePK(c), skLease),
			ConditionExpression:       aws.String("#o = :o"),
			ExpressionAttributeNames:  map[string]string{"#o": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":o": str(owner)},
			ReturnConsumedCapacity:    types.ReturnConsumedCapacityIndexes})
		if err == nil {
			s.Metrics.write(ccOf(out.ConsumedCapacity)...)
		}
	}
}

// awaitLease polls a held lease every 5-15 ms with an eventually consistent read until it
// looks free, or returns ErrCourseBusy at the deadline. Every hand-off of a busy course waits
// out part of a poll, so polling fast keeps the course from idling between holders: in
// make load on this machine, 20-50 ms polls gave 1, 3 and 1 "course busy" 503s in three runs
// and 5-15 ms gave 0, 1 and 0. A poll costs half a read unit, and only while waiting.
func (s *Store) awaitLease(ctx context.Context, courseID string, deadline time.Time) error {
	for {
		if time.Now().After(deadline) {
			return rollcall.ErrCourseBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5*time.Millisecond + time.Duration(rand.Int64N(int64(10*time.Millisecond)))):
		}
		out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(LeasePK(courseID), skLease),
			ProjectionExpression: aws.String("#u"), ExpressionAttributeNames: map[string]string{"#u": "until"},
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			return err
		}
		s.Metrics.read(ccOf(out.ConsumedCapacity)...)
		if len(out.Item) == 0 || getN(out.Item, "until") < time.Now().UnixMilli() {
			return nil
		}
	}
}

// spreadOverBlocks orders writes so that the calls in flight at any moment hit many course
// blocks, hence many GSI1 partition keys (block mod Shards). A bulk request numbers its new
// enrollments consecutively: written in seq order, every call in flight would land in the
// same block and one key would take the whole request's write rate. Taking the blocks in
// turn (by seq within the block, then seq) puts up to 25 blocks in every call.
func spreadOverBlocks(es []*rollcall.Enrollment) []*rollcall.Enrollment {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *rollcall.Enrollment) int {
		if c := cmp.Compare(a.Seq%BlockSize, b.Seq%BlockSize); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return out
}

// PutEnrollments writes whole items with BatchWriteItem, 25 a call, several calls at once.
// Items still unprocessed after retries are reported per id; a request-level failure (the
// store is out) is returned as err.
func (s *Store) PutEnrollments(ctx context.Context, es []*rollcall.Enrollment) (map[string]error, error) {
	const chunk = 25
	var (
		mu     sync.Mutex
		failed = map[string]error{}
	)
	if err := s.reserveSeqs(ctx, es); err != nil {
		return nil, fmt.Errorf("put enrollments: %w", err)
	}
	es = spreadOverBlocks(es)
	err := s.forChunks(ctx, len(es), chunk, func(ctx context.Context, lo, hi int) error {
		reqs := make([]types.WriteRequest, 0, hi-lo)
		for _, e := range es[lo:hi] {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: EncodeEnrollment(e)}})
		}
		for attempt := 0; len(reqs) > 0; attempt++ {
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return err
				}
			}
			out, err := s.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems:           map[string][]types.WriteRequest{s.Table: reqs},
				ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes,
			})
			if err != nil {
				return err
			}
			s.Metrics.write(out.ConsumedCapacity...)
			reqs = out.UnprocessedItems[s.Table]
			if attempt >= 8 && len(reqs) > 0 {
				mu.Lock()
				for _, r := range reqs {
					failed[getS(r.PutRequest.Item, "id")] = fmt.Errorf("write %s: unprocessed after retries", describe(r.PutRequest.Item))
				}
				mu.Unlock()
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("put enrollments: %w", err)
	}
	return failed, nil
}

// MaxCommitItems is how many steps (lease checks and enrollments) one CommitEnrollments
// takes: DynamoDB's limit for a transaction, well above rollcall.SmallRequestItems.
const MaxCommitItems = 100

// leaseFree is the condition that no live bulk lease holds a course.
const leaseFree = "attribute_not_exists(PK) OR #u < :now"

// leaseCheck is the transaction step that fails while a live bulk lease holds the course.
func (s *Store) leaseCheck(courseID string, nowMilli int64) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: &s.Table, Key: key(LeasePK(courseID), skLease),
		ConditionExpression:       aws.String(leaseFree),
		ExpressionAttributeNames:  map[string]string{"#u": "until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(nowMilli)}}}
}

// versionIs is the condition that an enrollment still has the version read (0: still absent).
func versionIs(prev int64) (*string, map[string]types.AttributeValue) {
	if prev == 0 {
		return aws.String("attribute_not_exists(PK)"), nil
	}
	return aws.String("ver = :v"), map[string]types.AttributeValue{":v": num(prev)}
}

// SaveEnrollment writes one enrollment in a transaction that also checks the course's lease,
// so that it never interleaves with a bulk request's read-then-write.
func (s *Store) SaveEnrollment(ctx context.Context, e *rollcall.Enrollment, prev int64) error {
	return s.CommitEnrollments(ctx, []string{e.CourseID}, map[string]int64{e.ID: prev}, []*rollcall.Enrollment{e})
}

// CommitEnrollments is the write of a small bulk request (and of every single edit): one
// transaction that checks that no lease holds any of the courses and that every enrollment
// the request read still has the version it read: the Put's condition for those it changes,
// a ConditionCheck for those it leaves alone. So it commits as if the whole request had run
// alone at that instant, with no lease to take or wait for. DynamoDB bills 2 WCU for each
// step, a Put or a ConditionCheck, which is why only small bulk requests come this way.
func (s *Store) CommitEnrollments(ctx context.Context, courses []string, read map[string]int64, es []*rollcall.Enrollment) error {
	if n := len(courses) + len(read); n > MaxCommitItems {
		return fmt.Errorf("commit enrollments: %d items, at most %d", n, MaxCommitItems)
	}
	writes := make(map[string]*rollcall.Enrollment, len(es))
	for _, e := range es {
		if _, ok := read[e.ID]; !ok {
			return fmt.Errorf("commit enrollments: %s written but not read", e.ID)
		}
		writes[e.ID] = e
	}
	if err := s.reserveSeqs(ctx, es); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	steps := make([]types.TransactWriteItem, 0, len(courses)+len(read))
	for _, c := range courses {
		steps = append(steps, s.leaseCheck(c, now))
	}
	ids := make([]string, 0, len(read))
	for id := range read {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cond, vals := versionIs(read[id])
		if e := writes[id]; e != nil {
			steps = append(steps, types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: EncodeEnrollment(e),
				ConditionExpression: cond, ExpressionAttributeValues: vals}})
			continue
		}
		pk, sk := EnrollmentKey(id)
		steps = append(steps, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: &s.Table, Key: key(pk, sk),
			ConditionExpression: cond, ExpressionAttributeValues: vals}})
	}
	out, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:          steps,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes,
	})
	if err != nil {
		return s.transactionError(err, courses, fmt.Sprintf("commit %d enrollments", len(es)))
	}
	s.Metrics.write(out.ConsumedCapacity...)
	return nil
}

// AwaitCourse waits until no live bulk lease holds the course, or returns ErrCourseBusy at
// the deadline.
func (s *Store) AwaitCourse(ctx context.Context, courseID string, deadline time.Time) error {
	return s.awaitLease(ctx, courseID, deadline)
}

// transactionError maps a cancelled lease-checked transaction whose first steps check the
// leases of courses: one of those failing means that course is busy; anything else
// conflicting means an item moved on.
func (s *Store) transactionError(err error, courses []string, op string) error {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		s.Metrics.Requests.Add(1)
		for i, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" && i < len(courses) {
				return &rollcall.CourseBusyError{CourseID: courses[i]}
			}
		}
		return rollcall.ErrVersionChange
	}
	var tcx *types.TransactionConflictException
	if errors.As(err, &tcx) {
		return rollcall.ErrVersionChange
	}
	return fmt.Errorf("%s: %w", op, err)
}
