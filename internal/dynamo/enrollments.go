package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

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
		out, err := s.db().Query(ctx, in)
		if err != nil {
			return err
		}
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
