package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

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
	}
	for attempt := 0; ; attempt++ {
		_, err := s.db().TransactWriteItems(ctx, in)
		if err == nil {
			return nil
		}
		var tc *types.TransactionCanceledException
		if errors.As(err, &tc) {
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
	pk, sk := PersonUserKey(email)
	it, err := s.get(ctx, pk, sk)
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
