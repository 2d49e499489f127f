package dynamo

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Email opt-in: PK=U#<lower(username)> SK=OPTIN#<lower(org)>, opted_in set_at, in the user's
// partition (retiring the user moves it). An organization's courses: the course item carries
// GSI2PK=ORG#<lower(org)> GSI2SK=<course id> (see courseFields).

var _ rollcall.OptInStore = (*Store)(nil)

func optInSK(org string) string { return pfxOptIn + strings.ToLower(org) }

// SetEmailOptIn writes the answer (a Put: the latest answer wins).
func (s *Store) SetEmailOptIn(ctx context.Context, username, org string, in rollcall.OptIn) error {
	it := key(UserPK(username), optInSK(org))
	it["org"] = str(org)
	it["opted_in"] = boolean(in.OptedIn)
	it["set_at"] = str(FormatTime(in.SetAt))
	_, err := s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: it})
	if err != nil {
		return fmt.Errorf("set email opt-in: %w", err)
	}
	return nil
}

// EmailOptIns reads the answers of usernames for org with BatchGetItem.
func (s *Store) EmailOptIns(ctx context.Context, org string, usernames []string) (map[string]rollcall.OptIn, error) {
	keys := make([]item, 0, len(usernames))
	for _, u := range usernames {
		if rollcall.ValidUsername(u) {
			keys = append(keys, key(UserPK(u), optInSK(org)))
		}
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("email opt-ins: %w", err)
	}
	out := make(map[string]rollcall.OptIn, len(items))
	for _, it := range items {
		out[strings.TrimPrefix(getS(it, "PK"), pfxUser)] = rollcall.OptIn{OptedIn: getBool(it, "opted_in"), SetAt: getTime(it, "set_at")}
	}
	return out, nil
}

// OrgCourses queries GSI2 for the organization's courses.
func (s *Store) OrgCourses(ctx context.Context, org string) ([]string, error) {
	var out []string
	err := s.queryAll(ctx, &dynamodb.QueryInput{TableName: &s.Table, IndexName: aws.String(IndexTime),
		KeyConditionExpression:    aws.String("GSI2PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(OrgIndexPK(org))},
	}, func(it item) bool {
		out = append(out, getS(it, "GSI2SK"))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("organization courses: %w", err)
	}
	return out, nil
}
