package samtemplate

import (
	"fmt"
	"time"
)

// QueueSpec is an AWS::SQS::Queue of the template, as the local stack creates it.
type QueueSpec struct {
	LogicalID string
	// VisibilityTimeout is how long a received message stays hidden (SQS's default 30 s).
	VisibilityTimeout time.Duration
	// MessageRetention is how long SQS keeps a message (default 4 days).
	MessageRetention time.Duration
	// DeadLetterQueue is the logical id of the RedrivePolicy's target (!GetAtt X.Arn), and
	// MaxReceiveCount the receives after which a message moves there; "" and 0 without one.
	DeadLetterQueue string
	MaxReceiveCount int
}

// Queues returns the template's SQS queues in file order, dead-letter targets first so that
// they can be created before the queues that name them.
func (t *Template) Queues() ([]QueueSpec, error) {
	var out, withDLQ []QueueSpec
	for _, r := range t.ResourcesOfType("AWS::SQS::Queue") {
		q := QueueSpec{LogicalID: r.LogicalID, VisibilityTimeout: 30 * time.Second, MessageRetention: 4 * 24 * time.Hour}
		p := r.Properties
		if v, ok := p["VisibilityTimeout"]; ok {
			d, err := t.seconds(v)
			if err != nil {
				return nil, fmt.Errorf("queue %s: VisibilityTimeout: %w", r.LogicalID, err)
			}
			q.VisibilityTimeout = d
		}
		if v, ok := p["MessageRetentionPeriod"]; ok {
			d, err := t.seconds(v)
			if err != nil {
				return nil, fmt.Errorf("queue %s: MessageRetentionPeriod: %w", r.LogicalID, err)
			}
			q.MessageRetention = d
		}
		if rp := asMap(p["RedrivePolicy"]); rp != nil {
			ga := asList(asMap(rp["deadLetterTargetArn"])["Fn::GetAtt"])
			if len(ga) != 2 || ga[1] != "Arn" {
				return nil, fmt.Errorf("queue %s: RedrivePolicy.deadLetterTargetArn must be !GetAtt <Queue>.Arn", r.LogicalID)
			}
			q.DeadLetterQueue, _ = ga[0].(string)
			if t.Resources[q.DeadLetterQueue].Type != "AWS::SQS::Queue" {
				return nil, fmt.Errorf("queue %s: dead-letter target %s is not a queue of the template", r.LogicalID, q.DeadLetterQueue)
			}
			n, err := t.integer(rp["maxReceiveCount"])
			if err != nil || n < 1 || n > 1000 {
				return nil, fmt.Errorf("queue %s: RedrivePolicy.maxReceiveCount %v", r.LogicalID, rp["maxReceiveCount"])
			}
			q.MaxReceiveCount = n
			withDLQ = append(withDLQ, q)
			continue
		}
		out = append(out, q)
	}
	return append(out, withDLQ...), nil
}

// BucketSpec is an AWS::S3::Bucket of the template.
type BucketSpec struct {
	LogicalID string
	// ExpirationDays of the first enabled lifecycle rule with one (0: objects never expire).
	ExpirationDays int
}

// Buckets returns the template's S3 buckets in file order.
func (t *Template) Buckets() ([]BucketSpec, error) {
	var out []BucketSpec
	for _, r := range t.ResourcesOfType("AWS::S3::Bucket") {
		b := BucketSpec{LogicalID: r.LogicalID}
		for _, rule := range asList(asMap(r.Properties["LifecycleConfiguration"])["Rules"]) {
			m := asMap(rule)
			if asString(m["Status"]) != "Enabled" || m["ExpirationInDays"] == nil {
				continue
			}
			n, err := t.integer(m["ExpirationInDays"])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bucket %s: ExpirationInDays %v", r.LogicalID, m["ExpirationInDays"])
			}
			b.ExpirationDays = n
			break
		}
		out = append(out, b)
	}
	return out, nil
}
