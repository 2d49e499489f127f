package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

func (s *Store) GetCourse(ctx context.Context, id string) (*rollcall.Course, error) {
	it, err := s.get(ctx, CoursePK(id), skCourse)
	if err != nil {
		return nil, fmt.Errorf("get course %s: %w", id, err)
	}
	if it == nil {
		return nil, rollcall.ErrNotFound
	}
	return decodeCourse(it), nil
}

func (s *Store) GetCourses(ctx context.Context, ids []string) (map[string]*rollcall.Course, error) {
	keys := make([]item, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, key(CoursePK(id), skCourse))
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get courses: %w", err)
	}
	out := make(map[string]*rollcall.Course, len(items))
	for _, it := range items {
		c := decodeCourse(it)
		out[c.ID] = c
	}
	return out, nil
}

func (s *Store) PutCourse(ctx context.Context, c *rollcall.Course) (bool, error) {
	// An update, not a put: the item also holds the enrollment counter (enr_seq).
	fields := courseFields(c)
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var sets []string
	i := 0
	for k, v := range fields {
		names[fmt.Sprintf("#f%d", i)] = k
		values[fmt.Sprintf(":f%d", i)] = v
		sets = append(sets, fmt.Sprintf("#f%d = :f%d", i, i))
		i++
	}
	sort.Strings(sets)
	out, err := s.db().UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key(CoursePK(c.ID), skCourse),
		UpdateExpression: aws.String("SET " + strings.Join(sets, ", ")), ExpressionAttributeNames: names,
		ExpressionAttributeValues: values, ReturnValues: types.ReturnValueUpdatedOld})
	if err != nil {
		return false, fmt.Errorf("put course %s: %w", c.ID, err)
	}
	return len(out.Attributes) == 0, nil
}

// reserveSeqs numbers the enrollments that have no Seq yet: one ADD on each course's counter
// (the courses at the same time) reserves a contiguous range. A reservation whose write then
// fails leaves a gap, which the lists skip.
func (s *Store) reserveSeqs(ctx context.Context, es []*rollcall.Enrollment) error {
	byCourse := map[string][]*rollcall.Enrollment{}
	var courses []string
	for _, e := range es {
		if e.Seq == 0 {
			if byCourse[e.CourseID] == nil {
				courses = append(courses, e.CourseID)
			}
			byCourse[e.CourseID] = append(byCourse[e.CourseID], e)
		}
	}
	return s.forChunks(ctx, len(courses), 1, func(ctx context.Context, i, _ int) error {
		c := courses[i]
		news := byCourse[c]
		out, err := s.db().UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key(CoursePK(c), skCourse),
			UpdateExpression:          aws.String("ADD enr_seq :n"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(len(news)))},
			ReturnValues:              types.ReturnValueUpdatedNew})
		if err != nil {
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				return fmt.Errorf("reserve seq in %s: %w", c, rollcall.ErrNotFound)
			}
			return fmt.Errorf("reserve seq in %s: %w", c, err)
		}
		last := getN(out.Attributes, "enr_seq")
		for j, e := range news {
			e.Seq = last - int64(len(news)) + 1 + int64(j)
		}
		return nil
	})
}

// courseSeq is the highest seq handed out in a course (0 if none).
func (s *Store) courseSeq(ctx context.Context, courseID string) (int64, error) {
	out, err := s.db().GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(CoursePK(courseID), skCourse),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("enr_seq")})
	if err != nil {
		return 0, err
	}
	return getN(out.Item, "enr_seq"), nil
}
