package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// OwedMail lists the ids of the enrollments, and of the finished jobs, of one shard of the
// owed-mail index (GSI5) whose mail has been owed since before `before`, longest-owed first,
// at most limit of them together, after the position from (a next of an earlier call; "" to
// start). next is where to go on, or "" when the shard has no more. The index is eventually
// consistent and holds keys only: the caller reads the items themselves (GetEnrollments,
// GetJob, strongly consistent) before acting.
func (s *Store) OwedMail(ctx context.Context, shard int, from string, before time.Time, limit int) (ids, jobs []string, next string, err error) {
	limit = max(limit, 1)
	vals := map[string]types.AttributeValue{":pk": str(MailOwedIndexPK(shard)), ":before": str(FormatTime(before))}
	cond := "GSI5PK = :pk AND GSI5SK < :before"
	if from != "" {
		// BETWEEN is inclusive: start just past from. (No sort key equals :before itself,
		// which has no "#<id>".)
		cond = "GSI5PK = :pk AND GSI5SK BETWEEN :from AND :before"
		vals[":from"] = str(from + "\x00")
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.Table,
		IndexName:                 aws.String(IndexMailOwed),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeValues: vals,
		Limit:                     aws.Int32(int32(min(limit, 1000))),
	}
	last := ""
	err = s.queryAll(ctx, in, func(it item) bool {
		sk := getS(it, "GSI5SK")
		last = sk
		if i := len(TimeLayout) + 1; len(sk) > i {
			if job, ok := strings.CutPrefix(sk[i:], pfxOwedJob); ok {
				jobs = append(jobs, job)
			} else {
				ids = append(ids, sk[i:])
			}
		}
		return len(ids)+len(jobs) < limit
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("owed mail shard %d: %w", shard, err)
	}
	if len(ids)+len(jobs) >= limit {
		next = last
	}
	return ids, jobs, next, nil
}

// ClearMailOwed takes the enrollments of refs out of the owed-mail index, each only while its
// mail_seq is still the ref's (a newer change owes newer mail, which stays owed). It neither
// advances the version nor touches anything else, so concurrent writers are not disturbed: one
// that read the item before and writes after puts the keys back, and the mail-sent marker
// then tells the sweep the mail went out. It returns how many were cleared.
func (s *Store) ClearMailOwed(ctx context.Context, refs []MailRef) (int, error) {
	var (
		mu      sync.Mutex
		cleared int
	)
	refs = uniqueRefs(refs)
	// One small UpdateItem per mail (there is no batch update): run more at once than the
	// batch calls do, so that clearing a batch's mail adds little to the mailer's run.
	wide := *s
	wide.Parallel = max(s.parallel(), clearParallel)
	err := wide.forChunks(ctx, len(refs), 1, func(ctx context.Context, lo, _ int) error {
		r := refs[lo]
		pk, sk := EnrollmentKey(r.EnrollmentID)
		_, err := s.db().UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.Table,
			Key:                       key(pk, sk),
			UpdateExpression:          aws.String("REMOVE mail_owed_at, GSI5PK, GSI5SK"),
			ConditionExpression:       aws.String("mail_seq = :seq AND attribute_exists(GSI5PK)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":seq": num(r.Seq)},
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &ccf):
			return nil
		case err != nil:
			return fmt.Errorf("clear owed mail %s: %w", r.EnrollmentID, err)
		}
		mu.Lock()
		cleared++
		mu.Unlock()
		return nil
	})
	return cleared, err
}

// LeaseMailSweep takes the owed-mail sweep's lease (MailSweepLease) for ttl, or until ctx's
// deadline: two sweeps never run at once. ok is false when another run holds it.
func (s *Store) LeaseMailSweep(ctx context.Context, owner string, ttl time.Duration) (release func(context.Context), ok bool, err error) {
	held, busy, err := s.tryLeases(ctx, []lease{{pk: LeasePK(MailSweepLease), sk: skLease, name: MailSweepLease}}, owner, ttl)
	if err != nil || busy != nil {
		return nil, false, err
	}
	return func(ctx context.Context) { s.releaseLeases(ctx, held, owner) }, true, nil
}

// clearParallel is how many ClearMailOwed updates run at once.
const clearParallel = 32

func uniqueRefs(refs []MailRef) []MailRef {
	seen := make(map[MailRef]bool, len(refs))
	out := refs[:0:0]
	for _, r := range refs {
		if !seen[r] && rollcall.ValidEnrollmentID(r.EnrollmentID) {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
