package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Invitation quota: PK=QUOTA#<lower(username)>#<YYYY-MM-DD> SK=QUOTA, n = new addresses the
// course admin invited that day (UTC), ttl two days on.

const (
	pfxQuota = "QUOTA#"
	skQuota  = "QUOTA"
)

// QuotaPK is one admin's invitation count of one day.
func QuotaPK(username, day string) string { return pfxQuota + username + "#" + day }

// ReserveInvites adds n to the day's count if it stays at most limit.
func (s *Store) ReserveInvites(ctx context.Context, username, day string, n, limit int) error {
	if n > limit {
		return rollcall.ErrInviteQuota
	}
	expires := time.Now().Add(48 * time.Hour).Unix()
	_, err := s.db().UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key(QuotaPK(username, day), skQuota),
		UpdateExpression:          aws.String("ADD #n :n SET #t = :t"),
		ConditionExpression:       aws.String("attribute_not_exists(#n) OR #n <= :max"),
		ExpressionAttributeNames:  map[string]string{"#n": "n", "#t": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(n)), ":t": num(expires), ":max": &types.AttributeValueMemberN{Value: strconv.Itoa(limit - n)}}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return rollcall.ErrInviteQuota
	}
	if err != nil {
		return fmt.Errorf("reserve invitations: %w", err)
	}
	return nil
}
