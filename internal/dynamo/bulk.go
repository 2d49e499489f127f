package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

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
	if err := s.reserveSeqs(ctx, es); err != nil {
		return nil, fmt.Errorf("put enrollments: %w", err)
	}
	es = spreadOverBlocks(es)
	items := make([]item, len(es))
	for i, e := range es {
		items[i] = EncodeEnrollment(e)
	}
	failed, err := s.batchPut(ctx, items)
	if err != nil {
		return nil, fmt.Errorf("put enrollments: %w", err)
	}
	out := make(map[string]error, len(failed))
	for i, ferr := range failed {
		if !errors.Is(ferr, errUnprocessed) {
			return nil, fmt.Errorf("put enrollments: %w", ferr) // a failed call: the store is out
		}
		out[es[i].ID] = fmt.Errorf("write %s: %w", describe(items[i]), ferr)
	}
	return out, nil
}

// MaxCommitItems is how many steps (lease checks and enrollments) one CommitEnrollments
// takes: DynamoDB's limit for a transaction, well above rollcall.SmallRequestItems.
const MaxCommitItems = 100

// leaseFree is the condition that no live bulk lease holds a course.
const leaseFree = "attribute_not_exists(PK) OR #u < :now"

// leaseCheck is the transaction step that fails while a live bulk lease holds the course: it
// checks one shard of the lease (a holder has them all).
func (s *Store) leaseCheck(courseID string, shard int, nowMilli int64) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: &s.Table, Key: key(LeasePK(courseID), LeaseSK(shard)),
		ConditionExpression:       aws.String(leaseFree),
		ExpressionAttributeNames:  map[string]string{"#u": "until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(nowMilli)}}}
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
	ids := make([]string, 0, len(read))
	for id := range read {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// The lease shard this commit checks: by the learner of its first enrollment, so that
	// writers of different learners of one course name different lease items.
	shard := 0
	if len(es) > 0 {
		shard = ShardOf(es[0].ID) % LeaseShards
	} else if len(ids) > 0 {
		shard = ShardOf(ids[0]) % LeaseShards
	}
	now := time.Now().UnixMilli()
	steps := make([]types.TransactWriteItem, 0, len(courses)+len(read))
	for _, c := range courses {
		steps = append(steps, s.leaseCheck(c, shard, now))
	}
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
	_, err := s.db().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: steps,
	})
	if err != nil {
		return s.transactionError(err, courses, fmt.Sprintf("commit %d enrollments", len(es)))
	}
	return nil
}

// AwaitCourse waits until no live bulk lease holds the course, or returns ErrCourseBusy at
// the deadline.
func (s *Store) AwaitCourse(ctx context.Context, courseID string, deadline time.Time) error {
	return s.awaitLease(ctx, courseLease(courseID, 0), deadline)
}

// transactionError maps a cancelled lease-checked transaction whose first steps check the
// leases of courses: one of those failing means that course is busy; anything else
// conflicting means an item moved on.
func (s *Store) transactionError(err error, courses []string, op string) error {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for i, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" && i < len(courses) {
				return &rollcall.CourseBusyError{CourseID: courses[i]}
			}
		}
		for i, r := range tc.CancellationReasons {
			if code := aws.ToString(r.Code); code != "" && code != "None" {
				step := "enrollment"
				if i < len(courses) {
					step = "lease"
				}
				return &rollcall.CommitConflict{Code: code, Step: step}
			}
		}
		return &rollcall.CommitConflict{Code: "TransactionCanceled"}
	}
	var tcx *types.TransactionConflictException
	if errors.As(err, &tcx) {
		return &rollcall.CommitConflict{Code: "TransactionConflict"}
	}
	return fmt.Errorf("%s: %w", op, err)
}
