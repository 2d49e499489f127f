package dynamo

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// dueIndex is a sharded, time-sorted index that a scheduled sweep reads: the entries of shard
// n sit under partition key pk(n) and sort by "<due time>#<id>".
type dueIndex struct {
	what     string // for errors
	name     string // the GSI
	pkAttr   string
	skAttr   string
	pk       func(shard int) string
	decode   func(item) *rollcall.Enrollment
	pageSize int32
}

// queryDue pages through every shard of ix for entries due at or before `before`, querying
// up to Parallel shards at once. Each shard's pages go to fn in order; fn may be called from
// several goroutines at once, and returning false stops every shard.
func (s *Store) queryDue(ctx context.Context, ix dueIndex, before time.Time, fn func([]*rollcall.Enrollment) bool) error {
	// The sort key is <time>#<id>; '$' sorts just after '#', so the bound includes due == before.
	bound := FormatTime(before) + "$"
	var stop atomic.Bool
	return s.forChunks(ctx, Shards, 1, func(ctx context.Context, shard, _ int) error {
		in := &dynamodb.QueryInput{
			TableName:                 &s.Table,
			IndexName:                 aws.String(ix.name),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk < :t"),
			ExpressionAttributeNames:  map[string]string{"#pk": ix.pkAttr, "#sk": ix.skAttr},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(ix.pk(shard)), ":t": str(bound)},
			Limit:                     aws.Int32(ix.pageSize),
		}
		for !stop.Load() {
			out, err := s.db().Query(ctx, in)
			if err != nil {
				return fmt.Errorf("%s (shard %d): %w", ix.what, shard, err)
			}
			if len(out.Items) > 0 {
				page := make([]*rollcall.Enrollment, 0, len(out.Items))
				for _, it := range out.Items {
					page = append(page, ix.decode(it))
				}
				if !fn(page) {
					stop.Store(true)
					return nil
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				return nil
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
		return nil
	})
}
