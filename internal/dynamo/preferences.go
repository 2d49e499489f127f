package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Preferences: one item per user, PK=U#<lower(username)> SK=PREFS, one attribute "p:<key>"
// per preference, beside the user item in the same partition: reading both is one Query, and
// retiring the user moves them with it.

const (
	skPrefs    = "PREFS"
	prefAttrPx = "p:"
)

var _ rollcall.PreferenceStore = (*Store)(nil)

func prefsOf(it item) map[string]string {
	out := map[string]string{}
	for k := range it {
		if strings.HasPrefix(k, prefAttrPx) {
			out[k[len(prefAttrPx):]] = getS(it, k)
		}
	}
	return out
}

// GetPreferences reads the user's partition (user item and preferences, one Query).
func (s *Store) GetPreferences(ctx context.Context, username string) (map[string]string, error) {
	if !rollcall.ValidUsername(username) {
		return nil, rollcall.ErrNotFound
	}
	var user bool
	prefs := map[string]string{}
	err := s.queryAll(ctx, s.partitionQuery(UserPK(username)), func(it item) bool {
		switch getS(it, "SK") {
		case skUser:
			user = true
		case skPrefs:
			prefs = prefsOf(it)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("get preferences: %w", err)
	}
	if !user {
		return nil, rollcall.ErrNotFound
	}
	return prefs, nil
}

// UpdatePreferences sets and removes attributes of the preferences item in one UpdateItem.
func (s *Store) UpdatePreferences(ctx context.Context, username string, set map[string]string, remove []string) (map[string]bool, error) {
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var sets, rems []string
	i := 0
	for k, v := range set {
		n := "#a" + strconv.Itoa(i)
		names[n] = prefAttrPx + k
		values[":v"+strconv.Itoa(i)] = str(v)
		sets = append(sets, n+" = :v"+strconv.Itoa(i))
		i++
	}
	for _, k := range remove {
		n := "#a" + strconv.Itoa(i)
		names[n] = prefAttrPx + k
		rems = append(rems, n)
		i++
	}
	if i == 0 {
		return map[string]bool{}, nil
	}
	expr := ""
	if len(sets) > 0 {
		expr = "SET " + strings.Join(sets, ", ")
	}
	if len(rems) > 0 {
		expr += " REMOVE " + strings.Join(rems, ", ")
	}
	in := &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key(UserPK(username), skPrefs),
		UpdateExpression: aws.String(strings.TrimSpace(expr)), ExpressionAttributeNames: names,
		ReturnValues: types.ReturnValueUpdatedOld}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	out, err := s.db().UpdateItem(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("update preferences: %w", err)
	}
	existed := map[string]bool{}
	for k := range prefsOf(out.Attributes) {
		existed[k] = true
	}
	return existed, nil
}

// MailPreferences reads the preferences items of many users (BatchGetItem, 100 a call),
// keyed by lower-case username.
func (s *Store) MailPreferences(ctx context.Context, usernames []string) (map[string]rollcall.MailPreferences, error) {
	seen := map[string]bool{}
	keys := make([]item, 0, len(usernames))
	for _, u := range usernames {
		n := rollcall.NormalizeUsername(u)
		if n == "" || seen[n] || !rollcall.ValidUsername(u) {
			continue
		}
		seen[n] = true
		keys = append(keys, key(UserPK(u), skPrefs))
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("mail preferences: %w", err)
	}
	out := make(map[string]rollcall.MailPreferences, len(items))
	for _, it := range items {
		p := prefsOf(it)
		out[strings.TrimPrefix(getS(it, "PK"), pfxUser)] = rollcall.MailPreferences{Lang: p[rollcall.PrefLang], TimeZone: p[rollcall.PrefTimeZone]}
	}
	return out, nil
}
