package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

var (
	_ rollcall.RetirementStore       = (*Store)(nil)
	_ rollcall.RetirementParticipant = (*Store)(nil)
)

func encodeRetirement(r *rollcall.Retirement) item {
	it := key(RetirementPK(r.ID), skRetirement)
	it["rid"] = num(r.ID)
	if r.OriginalUsername != "" {
		it["orig_username"] = str(r.OriginalUsername)
	}
	if r.OriginalEmail != "" {
		it["orig_email"] = str(r.OriginalEmail)
	}
	it["retired_username"] = str(r.RetiredUsername)
	it["retired_email"] = str(r.RetiredEmail)
	it["state"] = str(string(r.State))
	it["last_state"] = str(string(r.LastState))
	if r.Responses != "" {
		it["responses"] = str(r.Responses)
	}
	it["retired"] = boolean(r.Retired)
	it["created"] = str(FormatTime(r.Created))
	it["modified"] = str(FormatTime(r.Modified))
	it["ver"] = num(r.Version)
	it["GSI2PK"] = str(RetirementQueuePK(r.State))
	it["GSI2SK"] = str(FormatTime(r.Created) + "#" + strconv.FormatInt(r.ID, 10))
	return it
}

func decodeRetirement(it item) *rollcall.Retirement {
	return &rollcall.Retirement{ID: getN(it, "rid"), OriginalUsername: getS(it, "orig_username"), OriginalEmail: getS(it, "orig_email"),
		RetiredUsername: getS(it, "retired_username"), RetiredEmail: getS(it, "retired_email"),
		State: rollcall.RetirementState(getS(it, "state")), LastState: rollcall.RetirementState(getS(it, "last_state")),
		Responses: getS(it, "responses"), Retired: getBool(it, "retired"),
		Created: getTime(it, "created"), Modified: getTime(it, "modified"), Version: getN(it, "ver")}
}

// userMark sets or removes the retiring mark of one of a user's two items (which must exist).
func (s *Store) userMark(pk string, on bool) types.TransactWriteItem {
	u := &types.Update{TableName: &s.Table, Key: key(pk, skUser), ConditionExpression: aws.String("attribute_exists(PK)")}
	if on {
		u.UpdateExpression = aws.String("SET retiring = :t")
		u.ExpressionAttributeValues = map[string]types.AttributeValue{":t": boolean(true)}
	} else {
		u.UpdateExpression = aws.String("REMOVE retiring")
	}
	return types.TransactWriteItem{Update: u}
}

func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := s.db().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		return err
	}
	return nil
}

func cancelledOn(err error, i int) bool {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) || len(tc.CancellationReasons) <= i {
		return false
	}
	return aws.ToString(tc.CancellationReasons[i].Code) == "ConditionalCheckFailed"
}

// CreateRetirement puts the request (new) and marks both user items retiring, in one transaction.
func (s *Store) CreateRetirement(ctx context.Context, r *rollcall.Retirement) error {
	err := s.transact(ctx, []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.Table, Item: encodeRetirement(r), ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		s.userMark(UserPK(r.OriginalUsername), true),
		s.userMark(PersonPK(r.OriginalEmail), true),
	})
	switch {
	case err == nil:
		return nil
	case cancelledOn(err, 0):
		return &rollcall.ConflictError{Detail: "This account already has a retirement request."}
	case cancelledOn(err, 1), cancelledOn(err, 2):
		return rollcall.ErrNotFound
	}
	return fmt.Errorf("create retirement: %w", err)
}

// GetRetirement reads one request (strongly consistent).
func (s *Store) GetRetirement(ctx context.Context, id int64) (*rollcall.Retirement, error) {
	it, err := s.get(ctx, RetirementPK(id), skRetirement)
	if err != nil {
		return nil, fmt.Errorf("get retirement: %w", err)
	}
	if it == nil {
		return nil, rollcall.ErrNotFound
	}
	return decodeRetirement(it), nil
}

// RetirementsInState queries the state's GSI2 partition for requests created before the
// time, then reads them (the index holds their keys only).
func (s *Store) RetirementsInState(ctx context.Context, state rollcall.RetirementState, before time.Time) ([]*rollcall.Retirement, error) {
	var keys []item
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName: &s.Table, IndexName: aws.String(IndexTime),
		KeyConditionExpression: aws.String("GSI2PK = :pk AND GSI2SK < :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(RetirementQueuePK(state)), ":b": str(FormatTime(before))},
		ProjectionExpression: aws.String("PK, SK"),
	}, func(it item) bool {
		keys = append(keys, key(getS(it, "PK"), getS(it, "SK")))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("retirement queue: %w", err)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("retirement queue: %w", err)
	}
	out := make([]*rollcall.Retirement, 0, len(items))
	for _, it := range items {
		if r := decodeRetirement(it); r.State == state { // the index may lag a state change
			out = append(out, r)
		}
	}
	return out, nil
}

// SaveRetirement writes the request if its version is still prev.
func (s *Store) SaveRetirement(ctx context.Context, r *rollcall.Retirement, prev int64) error {
	cond, vals := versionIs(prev)
	_, err := s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: encodeRetirement(r),
		ConditionExpression: cond, ExpressionAttributeValues: vals})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return rollcall.ErrVersionChange
	}
	if err != nil {
		return fmt.Errorf("save retirement: %w", err)
	}
	return nil
}

// CancelRetirement deletes the request and lifts the retiring mark, in one transaction.
func (s *Store) CancelRetirement(ctx context.Context, r *rollcall.Retirement, prev int64) error {
	cond, vals := versionIs(prev)
	err := s.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &s.Table, Key: key(RetirementPK(r.ID), skRetirement),
			ConditionExpression: cond, ExpressionAttributeValues: vals}},
		s.userMark(UserPK(r.OriginalUsername), false),
		s.userMark(PersonPK(r.OriginalEmail), false),
	})
	if cancelledOn(err, 0) {
		return rollcall.ErrVersionChange
	}
	if err != nil {
		return fmt.Errorf("cancel retirement: %w", err)
	}
	return nil
}

// RetirePerson moves everything that names from to the pseudonyms of to (the enrollment
// store's part of the retire step), finding it by key, never by Scan:
//
//   - the email's partition P#<eh>: enrollments (moved to the new email's hash: a new id),
//     audit entries (rewritten and moved), mail-sent markers (deleted: no mail is owed any
//     more), and the user's email item, moved last;
//   - the username's partition U#<username>: the user item and anything filed under it;
//   - the invitation quota counters of the username (QUOTA#<username>#<day>, the last 3 days).
//
// New items are written before old ones are deleted, so a run that stops half way leaves the
// rest where a repeat finds it; a repeat rewrites the same new items.
func (s *Store) RetirePerson(ctx context.Context, from, to rollcall.Person) (rollcall.RetireCounts, error) {
	var c rollcall.RetireCounts
	now := time.Now().UTC()
	var puts, lastPuts, dels, lastDels []item
	toPK := PersonPK(to.Email)
	if from.Email != "" {
		err := s.queryAll(ctx, s.partitionQuery(PersonPK(from.Email)), func(it item) bool {
			sk := getS(it, "SK")
			old := key(getS(it, "PK"), sk)
			switch {
			case strings.HasPrefix(sk, pfxEnrollment):
				n, closed, dropped := rollcall.RetireEnrollment(DecodeEnrollment(it), to, now)
				puts = append(puts, EncodeEnrollment(n))
				dels = append(dels, old)
				c.Enrollments++
				if closed {
					c.InvitationsClosed++
				}
				if dropped {
					c.MailDropped++
				}
			case strings.HasPrefix(sk, pfxAudit):
				puts = append(puts, encodeAudit(rollcall.RetireAuditEntry(decodeAudit(it), from, to)))
				dels = append(dels, old)
				c.AuditEntries++
			case strings.HasPrefix(sk, pfxMailSent):
				dels = append(dels, old)
				c.MailMarkers++
			case sk == skUser:
				lastPuts = append(lastPuts, retiredUser(toPK, it, to))
				lastDels = append(lastDels, old)
			default:
				puts = append(puts, renamed(toPK, it, from, to))
				dels = append(dels, old)
				c.Other++
			}
			return true
		})
		if err != nil {
			return c, fmt.Errorf("retire: read person: %w", err)
		}
	}
	if from.Username != "" && rollcall.ValidUsername(from.Username) {
		toUser := UserPK(to.Username)
		err := s.queryAll(ctx, s.partitionQuery(UserPK(from.Username)), func(it item) bool {
			old := key(getS(it, "PK"), getS(it, "SK"))
			if getS(it, "SK") == skUser {
				lastPuts = append(lastPuts, retiredUser(toUser, it, to))
			} else {
				lastPuts = append(lastPuts, renamed(toUser, it, from, to))
				c.Other++
			}
			lastDels = append(lastDels, old)
			return true
		})
		if err != nil {
			return c, fmt.Errorf("retire: read user: %w", err)
		}
		for d := 0; d < 3; d++ {
			day := now.AddDate(0, 0, -d).Format("2006-01-02")
			dels = append(dels, key(QuotaPK(rollcall.NormalizeUsername(from.Username), day), skQuota))
		}
	}
	for _, step := range []struct {
		items []item
		del   bool
	}{{puts, false}, {dels, true}, {lastPuts, false}, {lastDels, true}} {
		if err := s.batchWrite(ctx, step.items, step.del); err != nil {
			return c, fmt.Errorf("retire: %w", err)
		}
	}
	return c, nil
}

// partitionQuery reads a whole partition, strongly consistent.
func (s *Store) partitionQuery(pk string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{TableName: &s.Table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ConsistentRead:            aws.Bool(true)}
}

// retiredUser is a user item under the pseudonyms (still marked retiring: never enrollable).
func retiredUser(pk string, it item, to rollcall.Person) item {
	n := encodeUser(pk, &rollcall.User{Username: to.Username, Email: to.Email, CreatedAt: getTime(it, "created_at")})
	n["retiring"] = boolean(true)
	return n
}

// renamed moves an item of a kind RetirePerson does not know to pk, replacing every string
// attribute that is the old username or email.
func renamed(pk string, it item, from, to rollcall.Person) item {
	n := make(item, len(it))
	for k, v := range it {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			switch {
			case from.Email != "" && strings.EqualFold(s.Value, from.Email):
				v = str(to.Email)
			case from.Username != "" && strings.EqualFold(s.Value, from.Username):
				v = str(to.Username)
			}
		}
		n[k] = v
	}
	n["PK"] = str(pk)
	return n
}

// batchWrite puts (or deletes, by key) items with BatchWriteItem, 25 a call, retrying what
// DynamoDB leaves unprocessed.
func (s *Store) batchWrite(ctx context.Context, items []item, del bool) error {
	if !del {
		failed, err := s.batchPut(ctx, items)
		if err != nil {
			return err
		}
		for _, ferr := range failed {
			return ferr
		}
		return nil
	}
	for lo := 0; lo < len(items); lo += 25 {
		hi := min(lo+25, len(items))
		reqs := make([]types.WriteRequest, 0, hi-lo)
		for _, k := range items[lo:hi] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
		}
		for attempt := 0; len(reqs) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 8 {
					return errUnprocessed
				}
				if err := backoff(ctx, attempt); err != nil {
					return err
				}
			}
			out, err := s.db().BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.Table: reqs},
			})
			if err != nil {
				return fmt.Errorf("batch delete: %w", err)
			}
			reqs = out.UnprocessedItems[s.Table]
		}
	}
	return nil
}
