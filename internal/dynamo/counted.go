package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// counted is the one place the store's DynamoDB requests are counted: every call through
// Store.db() asks for its consumed capacity (by index, so table and index write units can be
// told apart) and adds the request and its units to Metrics. A refused request (a failed
// condition, a cancelled transaction, an outage) counts as a request with no units: DynamoDB
// reports none to the caller then.
type counted struct {
	api API
	m   *Metrics
}

// db is the store's DynamoDB client, counted.
func (s *Store) db() API { return counted{api: s.DB, m: s.Metrics} }

const wantCapacity = types.ReturnConsumedCapacityIndexes

// ask sets ReturnConsumedCapacity unless the caller chose a setting.
func ask(rc *types.ReturnConsumedCapacity) {
	if *rc == "" {
		*rc = wantCapacity
	}
}

func ccOf(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

func (c counted) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.GetItem(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.read(ccOf(out.ConsumedCapacity)...)
	return out, nil
}

func (c counted) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.Query(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.read(ccOf(out.ConsumedCapacity)...)
	return out, nil
}

func (c counted) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.BatchGetItem(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.read(out.ConsumedCapacity...)
	return out, nil
}

func (c counted) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.PutItem(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.write(ccOf(out.ConsumedCapacity)...)
	return out, nil
}

func (c counted) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.DeleteItem(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.write(ccOf(out.ConsumedCapacity)...)
	return out, nil
}

func (c counted) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.UpdateItem(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.write(ccOf(out.ConsumedCapacity)...)
	return out, nil
}

func (c counted) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.BatchWriteItem(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.write(out.ConsumedCapacity...)
	return out, nil
}

func (c counted) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	ask(&in.ReturnConsumedCapacity)
	out, err := c.api.TransactWriteItems(ctx, in, opts...)
	if err != nil {
		c.m.Requests.Add(1)
		return out, err
	}
	c.m.write(out.ConsumedCapacity...)
	return out, nil
}
