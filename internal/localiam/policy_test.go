package localiam

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/ses"
)

const tableARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t"

func mustPolicy(t *testing.T, sts ...samtemplate.PolicyStatement) *Policy {
	t.Helper()
	p, err := New("TestFunction", sts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func allowSt(actions []string, resources ...string) samtemplate.PolicyStatement {
	return samtemplate.PolicyStatement{Effect: "Allow", Action: actions, Resource: resources}
}

func TestWildcards(t *testing.T) {
	for _, c := range []struct {
		pattern, action string
		want            bool
	}{
		{"dynamodb:*", "dynamodb:Query", true},
		{"dynamodb:Get*", "dynamodb:GetItem", true},
		{"dynamodb:Get*", "dynamodb:BatchGetItem", false},
		{"DynamoDB:query", "dynamodb:Query", true}, // actions are case-insensitive
		{"dynamodb:?etItem", "dynamodb:GetItem", true},
		{"dynamodb:Query", "dynamodb:QueryX", false},
		{"*", "ses:SendBulkEmail", true},
		{"sqs:SendMessage*", "sqs:SendMessage", true},
	} {
		if got := matchAction(c.pattern, c.action); got != c.want {
			t.Errorf("action %q ~ %q = %v, want %v", c.pattern, c.action, got, c.want)
		}
	}
	for _, c := range []struct {
		pattern, arn string
		want         bool
	}{
		{tableARN, tableARN, true},
		{tableARN, tableARN + "/index/GSI1", false}, // a table grant is no index grant
		{tableARN + "/index/*", tableARN + "/index/GSI1", true},
		{tableARN + "/index/*", tableARN, false},
		{tableARN + "/index/GSI2", tableARN + "/index/GSI1", false},
		{tableARN + "*", tableARN + "/index/GSI1", true},
		{"arn:aws:dynamodb:*:*:table/t", tableARN, true},
		{"arn:aws:dynamodb:*:*:table/t", "arn:aws:dynamodb:us-east-1:123456789012:table/t2", false},
		{"arn:aws:dynamodb:us-*:123456789012:table/?", tableARN, true},
		{"arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", true},
		{"*", tableARN, true},
		{"arn:aws:dynamodb:us-east-1:123456789012:table/T", tableARN, false}, // resources are case-sensitive
		// A wildcard in the region segment does not reach into the account or the resource.
		{"arn:aws:dynamodb:*:table/t", tableARN, false},
	} {
		if got := MatchARN(c.pattern, c.arn); got != c.want {
			t.Errorf("resource %q ~ %q = %v, want %v", c.pattern, c.arn, got, c.want)
		}
	}
}

func TestDecide(t *testing.T) {
	p := mustPolicy(t,
		allowSt([]string{"dynamodb:*"}, tableARN, tableARN+"/index/*"),
		samtemplate.PolicyStatement{Effect: "Deny", Action: []string{"dynamodb:DeleteItem"}, Resource: []string{"*"}},
		samtemplate.PolicyStatement{Effect: "Allow", NotAction: []string{"dynamodb:*"}, Resource: []string{"*"}},
		samtemplate.PolicyStatement{Effect: "Deny", Action: []string{"sqs:*"}, NotResource: []string{"arn:aws:sqs:us-east-1:123456789012:ok"}},
	)
	for _, c := range []struct {
		action, resource string
		want             Decision
	}{
		{"dynamodb:Query", tableARN + "/index/GSI1", Allow},
		{"dynamodb:PutItem", tableARN, Allow},
		{"dynamodb:DeleteItem", tableARN, ExplicitDeny}, // the Deny wins over the Allow
		{"dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/other", ImplicitDeny},
		{"ses:SendEmail", "arn:aws:ses:us-east-1:123456789012:identity/x", Allow}, // NotAction
		{"sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:ok", Allow},
		{"sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:other", ExplicitDeny}, // NotResource
	} {
		if got := p.Decide(Request{Action: c.action, Resource: c.resource}); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.action, c.resource, got, c.want)
		}
	}
	if got := mustPolicy(t).Decide(Request{Action: "dynamodb:GetItem", Resource: tableARN}); got != ImplicitDeny {
		t.Errorf("empty policy: %v", got)
	}
}

func TestConditions(t *testing.T) {
	cond := func(op, key string, vals ...string) samtemplate.PolicyStatement {
		s := allowSt([]string{"ses:SendBulkEmail"}, "*")
		s.Condition = map[string]map[string][]string{op: {key: vals}}
		return s
	}
	ctx := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		return m
	}
	from := ctx("ses:fromaddress", "no-reply@x.org")
	rcpts := map[string][]string{"ses:recipients": {"a@y.org", "b@x.org"}}
	for _, c := range []struct {
		name string
		st   samtemplate.PolicyStatement
		ctx  map[string][]string
		want Decision
	}{
		{"equals", cond("StringEquals", "ses:FromAddress", "no-reply@x.org"), from, Allow},
		{"key names ignore case", cond("StringEquals", "SES:fromAddress", "no-reply@x.org"), from, Allow},
		{"not equal", cond("StringEquals", "ses:FromAddress", "other@x.org"), from, ImplicitDeny},
		{"missing key", cond("StringEquals", "ses:FromAddress", "no-reply@x.org"), nil, ImplicitDeny},
		{"missing key IfExists", cond("StringEqualsIfExists", "ses:FromAddress", "no-reply@x.org"), nil, Allow},
		{"negated, missing key", cond("StringNotEquals", "ses:FromAddress", "no-reply@x.org"), nil, Allow},
		{"negated", cond("StringNotEquals", "ses:FromAddress", "no-reply@x.org"), from, ImplicitDeny},
		{"like", cond("StringLike", "ses:FromAddress", "*@x.org"), from, Allow},
		{"ignore case", cond("StringEqualsIgnoreCase", "ses:FromAddress", "NO-REPLY@X.ORG"), from, Allow},
		{"any value", cond("ForAnyValue:StringLike", "ses:Recipients", "*@x.org"),
			rcpts, Allow},
		{"all values", cond("ForAllValues:StringLike", "ses:Recipients", "*@x.org"),
			rcpts, ImplicitDeny},
		{"all values, none", cond("ForAllValues:StringLike", "ses:Recipients", "*@x.org"), nil, Allow},
		{"null true", cond("Null", "ses:FeedbackAddress", "true"), from, Allow},
		{"null false", cond("Null", "ses:FromAddress", "false"), from, Allow},
		{"null false, missing", cond("Null", "ses:FeedbackAddress", "false"), from, ImplicitDeny},
	} {
		p := mustPolicy(t, c.st)
		if got := p.Decide(Request{Action: "ses:SendBulkEmail", Resource: "*", Context: c.ctx}); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	s := allowSt([]string{"ses:*"}, "*")
	s.Condition = map[string]map[string][]string{"NumericLessThan": {"aws:MultiFactorAuthAge": {"3600"}}}
	if _, err := New("F", []samtemplate.PolicyStatement{s}); err == nil {
		t.Error("an operator the check cannot evaluate must fail at load, not be ignored")
	}
}

func TestDynamoDBRequests(t *testing.T) {
	reqs, err := Requests("DynamoDB", "Query", &dynamodb.QueryInput{TableName: aws.String("t"), IndexName: aws.String("GSI1")}, "us-east-1")
	if err != nil || len(reqs) != 1 || reqs[0].Action != "dynamodb:Query" || reqs[0].Resource != tableARN+"/index/GSI1" {
		t.Fatalf("query: %+v %v", reqs, err)
	}
	reqs, _ = Requests("DynamoDB", "Query", &dynamodb.QueryInput{TableName: aws.String("t")}, "us-east-1")
	if reqs[0].Resource != tableARN {
		t.Fatalf("query on the table: %+v", reqs)
	}
	reqs, _ = Requests("DynamoDB", "GetItem", &dynamodb.GetItemInput{TableName: aws.String(tableARN)}, "us-east-1")
	if reqs[0].Action != "dynamodb:GetItem" || reqs[0].Resource != tableARN {
		t.Fatalf("get by ARN: %+v", reqs)
	}
	reqs, _ = Requests("DynamoDB", "TransactWriteItems", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("t")}},
		{Update: &types.Update{TableName: aws.String("t")}},
		{Delete: &types.Delete{TableName: aws.String("u")}},
		{ConditionCheck: &types.ConditionCheck{TableName: aws.String("t")}},
	}}, "us-east-1")
	var got []string
	for _, r := range reqs {
		got = append(got, r.Action+" "+r.Resource[strings.LastIndex(r.Resource, "/")+1:])
	}
	if want := "dynamodb:PutItem t,dynamodb:UpdateItem t,dynamodb:DeleteItem u,dynamodb:ConditionCheckItem t"; strings.Join(got, ",") != want {
		t.Fatalf("transaction: %s, want %s", strings.Join(got, ","), want)
	}
	reqs, _ = Requests("DynamoDB", "BatchWriteItem", &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": nil, "u": nil}}, "us-east-1")
	if len(reqs) != 2 || reqs[0].Resource != tableARN || reqs[1].Action != "dynamodb:BatchWriteItem" {
		t.Fatalf("batch write: %+v", reqs)
	}
	reqs, _ = Requests("DynamoDB", "ListTables", &dynamodb.ListTablesInput{}, "us-east-1")
	if reqs[0].Resource != "*" {
		t.Fatalf("list tables: %+v", reqs)
	}
	var um *UnmappedError
	if _, err := Requests("DynamoDB", "ExecuteStatement", &dynamodb.ExecuteStatementInput{}, "us-east-1"); !errors.As(err, &um) {
		t.Fatalf("PartiQL: %v", err)
	}
	if _, err := Requests("Lambda", "Invoke", nil, "us-east-1"); !errors.As(err, &um) {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestSESRequests(t *testing.T) {
	reqs, err := Requests("SESv2", "SendBulkEmail", &sesv2.SendBulkEmailInput{
		FromEmailAddress:     aws.String("Rollcall <no-reply@x.org>"),
		ConfigurationSetName: aws.String("rollcall-local"),
		DefaultContent:       &sestypes.BulkEmailContent{Template: &sestypes.Template{TemplateName: aws.String("rollcall-local-enrolled")}},
		BulkEmailEntries: []sestypes.BulkEmailEntry{
			{Destination: &sestypes.Destination{ToAddresses: []string{"a@y.org"}}},
			{Destination: &sestypes.Destination{ToAddresses: []string{"b@y.org"}}},
		},
	}, "us-east-1")
	if err != nil || len(reqs) != 3 {
		t.Fatalf("%+v %v", reqs, err)
	}
	const pre = "arn:aws:ses:us-east-1:123456789012:"
	if r := reqs[0]; r.Action != "ses:SendBulkEmail" || r.Resource != pre+"identity/no-reply@x.org" ||
		len(r.Alternatives) != 1 || r.Alternatives[0] != pre+"identity/x.org" {
		t.Errorf("identity: %+v", r)
	}
	if reqs[1].Resource != pre+"template/rollcall-local-enrolled" || reqs[2].Resource != pre+"configuration-set/rollcall-local" {
		t.Errorf("template, configuration set: %+v", reqs[1:])
	}
	c := reqs[0].Context
	if c["ses:fromaddress"][0] != "no-reply@x.org" || c["ses:fromdisplayname"][0] != "Rollcall" || len(c["ses:recipients"]) != 2 {
		t.Errorf("context: %v", c)
	}

	// Granting the domain identity and the template, but not the configuration set, refuses.
	p := mustPolicy(t, allowSt([]string{"ses:SendBulkEmail"}, pre+"identity/x.org", pre+"template/rollcall-local-*"))
	if err := p.Authorize("SESv2", "SendBulkEmail", &sesv2.SendBulkEmailInput{
		FromEmailAddress:     aws.String("no-reply@x.org"),
		ConfigurationSetName: aws.String("rollcall-local"),
		DefaultContent:       &sestypes.BulkEmailContent{Template: &sestypes.Template{TemplateName: aws.String("rollcall-local-enrolled")}},
	}, "us-east-1"); !IsAccessDenied(err) || !strings.Contains(err.Error(), "configuration-set/rollcall-local") {
		t.Errorf("configuration set not granted: %v", err)
	}
}

// The mail functions' own SES client (internal/ses, which does not link the SDK's sesv2
// module) is checked as the SDK's would be: the same identity, template, configuration set
// and recipients.
func TestSESRequestsOfTheMailClient(t *testing.T) {
	in := &ses.SendBulkEmailInput{FromEmailAddress: "Rollcall <no-reply@x.org>", ConfigurationSetName: "rollcall-local",
		DefaultContent: ses.BulkEmailContent{Template: ses.Template{TemplateName: "rollcall-local-enrolled"}},
		BulkEmailEntries: []ses.BulkEmailEntry{{Destination: ses.Destination{ToAddresses: []string{"a@y.org"}}},
			{Destination: ses.Destination{ToAddresses: []string{"b@y.org"}}}}}
	reqs, err := Requests("SESv2", "SendBulkEmail", in, "us-east-1")
	if err != nil || len(reqs) != 3 {
		t.Fatalf("%+v %v", reqs, err)
	}
	const pre = "arn:aws:ses:us-east-1:123456789012:"
	if reqs[0].Resource != pre+"identity/no-reply@x.org" || reqs[1].Resource != pre+"template/rollcall-local-enrolled" ||
		reqs[2].Resource != pre+"configuration-set/rollcall-local" || len(reqs[0].Context["ses:recipients"]) != 2 ||
		reqs[0].Context["ses:fromdisplayname"][0] != "Rollcall" {
		t.Errorf("requests: %+v", reqs)
	}
	p := mustPolicy(t, allowSt([]string{"ses:SendBulkEmail"}, pre+"identity/x.org", pre+"template/rollcall-local-*"))
	if err := p.Authorize("SESv2", "SendBulkEmail", in, "us-east-1"); !IsAccessDenied(err) ||
		!strings.Contains(err.Error(), "configuration-set/rollcall-local") {
		t.Errorf("configuration set not granted: %v", err)
	}
}

func TestAuthorizeError(t *testing.T) {
	p := mustPolicy(t, allowSt([]string{"dynamodb:Query"}, tableARN))
	err := p.Authorize("DynamoDB", "Query", &dynamodb.QueryInput{TableName: aws.String("t"), IndexName: aws.String("GSI1")}, "us-east-1")
	if !IsAccessDenied(err) {
		t.Fatalf("want AccessDeniedException, got %v", err)
	}
	for _, want := range []string{"TestFunction", "dynamodb:Query", tableARN + "/index/GSI1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	err = p.Authorize("Lambda", "Invoke", struct{}{}, "us-east-1")
	if !IsAccessDenied(err) || !strings.Contains(err.Error(), "lambda:Invoke") || !strings.Contains(err.Error(), "TestFunction") {
		t.Errorf("unknown service must fail closed, naming function and action: %v", err)
	}
}

// The repository's template, evaluated for the local stack: spot checks of what each
// function may and may not do.
func TestRepoTemplatePolicies(t *testing.T) {
	path, err := samtemplate.Find()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	roles, err := FromTemplate(tpl, LocalValues("local", "t", "Rollcall <no-reply@rollcall.local>"))
	if err != nil {
		t.Fatal(err)
	}
	const ses = "arn:aws:ses:us-east-1:123456789012:"
	sesCtx := func(from string) map[string][]string { return map[string][]string{"ses:fromaddress": {from}} }
	for _, c := range []struct {
		fn     string
		req    Request
		allows bool
	}{
		{"ListEnrollmentsFunction", Request{Action: "dynamodb:Query", Resource: tableARN + "/index/GSI1"}, true},
		{"ListEnrollmentsFunction", Request{Action: "dynamodb:Query", Resource: tableARN + "/index/GSI3"}, false},
		{"ListEnrollmentsFunction", Request{Action: "dynamodb:PutItem", Resource: tableARN}, false},
		{"AdminFunction", Request{Action: "dynamodb:ConditionCheckItem", Resource: tableARN}, true},
		{"AuditFunction", Request{Action: "dynamodb:PutItem", Resource: tableARN}, false},
		{"AuditFunction", Request{Action: "dynamodb:GetRecords", Resource: tableARN + "/stream/local"}, true}, // SAM's stream role
		{"MailerFunction", Request{Action: "ses:SendBulkEmail", Resource: ses + "template/rollcall-local-enrolled", Context: sesCtx("no-reply@rollcall.local")}, true},
		{"MailerFunction", Request{Action: "ses:SendBulkEmail", Resource: ses + "identity/rollcall.local", Context: sesCtx("other@rollcall.local")}, false},
		{"MailerFunction", Request{Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:123456789012:StreamDeadLetterQueue"}, true},
		{"NoSuchFunction", Request{Action: "dynamodb:GetItem", Resource: tableARN}, false},
	} {
		if got := roles.Policy(c.fn).Decide(c.req) == Allow; got != c.allows {
			t.Errorf("%s %s on %s: allowed %v, want %v", c.fn, c.req.Action, c.req.Resource, got, c.allows)
		}
	}
}

// SQS and S3 are mapped from their inputs' fields (QueueUrl, Bucket, Key), without importing
// their SDK packages; these stand-ins have the same field names.
type (
	sqsInput struct {
		QueueUrl  *string
		QueueName *string
	}
	s3Object   struct{ Key *string }
	s3Delete   struct{ Objects []s3Object }
	s3Input    struct{ Bucket, Key, CopySource *string }
	s3DelInput struct {
		Bucket *string
		Delete *s3Delete
	}
)

func TestSQSAndS3Requests(t *testing.T) {
	const q = "arn:aws:sqs:us-east-1:123456789012:jobs"
	for _, c := range []struct {
		service, op string
		in          any
		want        string
	}{
		{"SQS", "SendMessage", &sqsInput{QueueUrl: aws.String("http://127.0.0.1:9324/000000000000/jobs")}, "sqs:SendMessage " + q},
		{"SQS", "SendMessageBatch", &sqsInput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/jobs")}, "sqs:SendMessage " + q},
		{"SQS", "DeleteMessageBatch", &sqsInput{QueueUrl: aws.String("http://localhost/queue/jobs")}, "sqs:DeleteMessage " + q},
		{"SQS", "GetQueueUrl", &sqsInput{QueueName: aws.String("jobs")}, "sqs:GetQueueUrl " + q},
		{"S3", "HeadObject", &s3Input{Bucket: aws.String("b"), Key: aws.String("k/1.csv")}, "s3:GetObject arn:aws:s3:::b/k/1.csv"},
		{"S3", "PutObject", &s3Input{Bucket: aws.String("b"), Key: aws.String("k")}, "s3:PutObject arn:aws:s3:::b/k"},
		{"S3", "ListObjectsV2", &s3Input{Bucket: aws.String("b")}, "s3:ListBucket arn:aws:s3:::b"},
		{"S3", "CopyObject", &s3Input{Bucket: aws.String("b"), Key: aws.String("to"), CopySource: aws.String("a/from%20x")},
			"s3:GetObject arn:aws:s3:::a/from x,s3:PutObject arn:aws:s3:::b/to"},
		{"S3", "DeleteObjects", &s3DelInput{Bucket: aws.String("b"), Delete: &s3Delete{Objects: []s3Object{{aws.String("1")}, {aws.String("2")}}}},
			"s3:DeleteObject arn:aws:s3:::b/1,s3:DeleteObject arn:aws:s3:::b/2"},
	} {
		reqs, err := Requests(c.service, c.op, c.in, "us-east-1")
		if err != nil {
			t.Errorf("%s %s: %v", c.service, c.op, err)
			continue
		}
		var got []string
		for _, r := range reqs {
			got = append(got, r.Action+" "+r.Resource)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%s %s: %s, want %s", c.service, c.op, strings.Join(got, ","), c.want)
		}
	}
	var um *UnmappedError
	if _, err := Requests("S3", "PutBucketPolicy", &s3Input{Bucket: aws.String("b")}, "us-east-1"); !errors.As(err, &um) {
		t.Errorf("an S3 operation without a mapping must fail closed: %v", err)
	}
}

// The check runs before every AWS call; it must cost nothing next to the call itself.
func BenchmarkAuthorizeBatchWrite(b *testing.B) {
	p, err := New("F", []samtemplate.PolicyStatement{
		allowSt([]string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"}, tableARN, tableARN+"/index/GSI2"),
	})
	if err != nil {
		b.Fatal(err)
	}
	in := &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": make([]types.WriteRequest, 25)}}
	for b.Loop() {
		if err := p.Authorize("DynamoDB", "BatchWriteItem", in, "us-east-1"); err != nil {
			b.Fatal(err)
		}
	}
}
