package localiam

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// UnmappedError means the package does not know how AWS authorizes an operation; the call is
// refused rather than let through unchecked.
type UnmappedError struct{ Service, Operation string }

func (e *UnmappedError) Error() string {
	return fmt.Sprintf("the local IAM check does not know how AWS authorizes %s %s; teach internal/localiam (requests.go) before using it",
		e.Service, e.Operation)
}

// Requests returns the authorizations AWS makes for one SDK call: service is the SDK's
// service id (DynamoDB, SESv2, Secrets Manager, SQS, S3), op the operation name, input the
// operation's input, region the client's region.
func Requests(service, op string, input any, region string) ([]Request, error) {
	if region == "" {
		region = samtemplate.LocalRegion
	}
	a := arns{region: region}
	switch service {
	case "DynamoDB":
		return a.dynamodb(op, input)
	case "DynamoDB Streams":
		return a.dynamodbStreams(op, input)
	case "SESv2":
		return a.sesv2(op, input)
	case "Secrets Manager":
		return a.secretsManager(op, input)
	case "SQS":
		return a.sqs(op, input)
	case "S3":
		return a.s3(op, input)
	}
	return nil, &UnmappedError{Service: service, Operation: op}
}

type arns struct{ region string }

func (a arns) prefix(service string) string {
	return "arn:aws:" + service + ":" + a.region + ":" + samtemplate.LocalAccountID + ":"
}

// table is a table's ARN; DynamoDB also takes the ARN where a table name goes.
func (a arns) table(name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	return a.prefix("dynamodb") + "table/" + name
}

func (a arns) dynamodb(op string, input any) ([]Request, error) {
	one := func(action, resource string) []Request {
		return []Request{{Action: "dynamodb:" + action, Resource: resource}}
	}
	switch in := input.(type) {
	case *dynamodb.QueryInput:
		return one(op, a.index(aws.ToString(in.TableName), aws.ToString(in.IndexName))), nil
	case *dynamodb.ScanInput:
		return one(op, a.index(aws.ToString(in.TableName), aws.ToString(in.IndexName))), nil
	case *dynamodb.BatchGetItemInput:
		var out []Request
		for _, t := range sortedKeys(in.RequestItems) {
			out = append(out, Request{Action: "dynamodb:BatchGetItem", Resource: a.table(t)})
		}
		return out, nil
	case *dynamodb.BatchWriteItemInput:
		var out []Request
		for _, t := range sortedKeys(in.RequestItems) {
			out = append(out, Request{Action: "dynamodb:BatchWriteItem", Resource: a.table(t)})
		}
		return out, nil
	case *dynamodb.TransactWriteItemsInput:
		// Each step is authorized as the single-item action it performs.
		ctx := map[string][]string{"dynamodb:enclosingoperation": {"TransactWriteItems"}}
		var out []Request
		for i, it := range in.TransactItems {
			var action, table string
			switch {
			case it.Put != nil:
				action, table = "PutItem", aws.ToString(it.Put.TableName)
			case it.Update != nil:
				action, table = "UpdateItem", aws.ToString(it.Update.TableName)
			case it.Delete != nil:
				action, table = "DeleteItem", aws.ToString(it.Delete.TableName)
			case it.ConditionCheck != nil:
				action, table = "ConditionCheckItem", aws.ToString(it.ConditionCheck.TableName)
			default:
				return nil, fmt.Errorf("TransactWriteItems step %d has no action", i)
			}
			out = append(out, Request{Action: "dynamodb:" + action, Resource: a.table(table), Context: ctx})
		}
		return out, nil
	case *dynamodb.TransactGetItemsInput:
		ctx := map[string][]string{"dynamodb:enclosingoperation": {"TransactGetItems"}}
		var out []Request
		for _, it := range in.TransactItems {
			if it.Get != nil {
				out = append(out, Request{Action: "dynamodb:GetItem", Resource: a.table(aws.ToString(it.Get.TableName)), Context: ctx})
			}
		}
		return out, nil
	case *dynamodb.ExecuteStatementInput, *dynamodb.BatchExecuteStatementInput, *dynamodb.ExecuteTransactionInput:
		// PartiQL is authorized by statement kind (PartiQLSelect, ...) on the tables it names.
		return nil, &UnmappedError{Service: "DynamoDB", Operation: op}
	}
	// Every other operation is authorized as itself on the table it names (GetItem, PutItem,
	// UpdateItem, DeleteItem, DescribeTable, UpdateTimeToLive, ...), on the ARN it names
	// (tagging, backups), or on * (ListTables, DescribeLimits, ...).
	if t, ok := stringField(input, "TableName"); ok && t != "" {
		return one(op, a.table(t)), nil
	}
	if r, ok := stringField(input, "ResourceArn"); ok && r != "" {
		return one(op, r), nil
	}
	if r, ok := stringField(input, "BackupArn"); ok && r != "" {
		return one(op, r), nil
	}
	return one(op, "*"), nil
}

func (a arns) index(table, index string) string {
	if index == "" {
		return a.table(table)
	}
	return a.table(table) + "/index/" + index
}

func (a arns) dynamodbStreams(op string, input any) ([]Request, error) {
	if s, ok := stringField(input, "StreamArn"); ok && s != "" {
		return []Request{{Action: "dynamodb:" + op, Resource: s}}, nil
	}
	if t, ok := stringField(input, "TableName"); ok && t != "" {
		return []Request{{Action: "dynamodb:" + op, Resource: a.table(t) + "/stream/*"}}, nil
	}
	// ListStreams without a table, GetRecords (the iterator names no stream we could read).
	return []Request{{Action: "dynamodb:" + op, Resource: "*"}}, nil
}

// sesv2 authorizes a send on the sending identity, and on the template and the configuration
// set it names; the condition keys are the sender, the recipients and the API version.
func (a arns) sesv2(op string, input any) ([]Request, error) {
	if op == "SendBulkEmail" || op == "SendEmail" {
		input = sdkSendInput(op, input)
	}
	var (
		from, fromARN, feedback, configSet, contactList string
		tmpl                                            *sestypes.Template
		dests                                           []*sestypes.Destination
	)
	switch in := input.(type) {
	case *sesv2.SendEmailInput:
		from, fromARN, feedback = aws.ToString(in.FromEmailAddress), aws.ToString(in.FromEmailAddressIdentityArn), aws.ToString(in.FeedbackForwardingEmailAddress)
		configSet = aws.ToString(in.ConfigurationSetName)
		if in.Content != nil {
			tmpl = in.Content.Template
		}
		dests = append(dests, in.Destination)
		if in.ListManagementOptions != nil {
			contactList = aws.ToString(in.ListManagementOptions.ContactListName)
		}
	case *sesv2.SendBulkEmailInput:
		from, fromARN, feedback = aws.ToString(in.FromEmailAddress), aws.ToString(in.FromEmailAddressIdentityArn), aws.ToString(in.FeedbackForwardingEmailAddress)
		configSet = aws.ToString(in.ConfigurationSetName)
		if in.DefaultContent != nil {
			tmpl = in.DefaultContent.Template
		}
		for _, e := range in.BulkEmailEntries {
			dests = append(dests, e.Destination)
		}
	default:
		// Management calls: on the template, configuration set or identity they name, else *.
		for _, f := range []struct{ field, kind string }{{"TemplateName", "template/"}, {"ConfigurationSetName", "configuration-set/"},
			{"EmailIdentity", "identity/"}, {"ContactListName", "contact-list/"}} {
			if v, ok := stringField(input, f.field); ok && v != "" {
				return []Request{{Action: "ses:" + op, Resource: a.prefix("ses") + f.kind + v}}, nil
			}
		}
		return []Request{{Action: "ses:" + op, Resource: "*"}}, nil
	}
	ctx := map[string][]string{"ses:apiversion": {"2"}}
	addr, name := from, ""
	if from != "" {
		if pa, err := mail.ParseAddress(from); err == nil {
			addr, name = pa.Address, pa.Name
		}
		ctx["ses:fromaddress"] = []string{addr}
		if name != "" {
			ctx["ses:fromdisplayname"] = []string{name}
		}
	}
	if feedback != "" {
		ctx["ses:feedbackaddress"] = []string{feedback}
	}
	var rcpts []string
	for _, d := range dests {
		if d != nil {
			rcpts = append(append(append(rcpts, d.ToAddresses...), d.CcAddresses...), d.BccAddresses...)
		}
	}
	if len(rcpts) > 0 {
		ctx["ses:recipients"] = rcpts
	}
	action := "ses:" + op
	var out []Request
	switch {
	case fromARN != "":
		out = append(out, Request{Action: action, Resource: fromARN, Context: ctx})
	case addr != "":
		// SES sends as the address's own identity if verified, else its domain's: either
		// grant will do.
		r := Request{Action: action, Resource: a.prefix("ses") + "identity/" + addr, Context: ctx}
		if _, domain, ok := strings.Cut(addr, "@"); ok {
			r.Alternatives = []string{a.prefix("ses") + "identity/" + domain}
		}
		out = append(out, r)
	default:
		out = append(out, Request{Action: action, Resource: a.prefix("ses") + "identity/*", Context: ctx})
	}
	if tmpl != nil {
		t := aws.ToString(tmpl.TemplateArn)
		if t == "" && aws.ToString(tmpl.TemplateName) != "" {
			t = a.prefix("ses") + "template/" + aws.ToString(tmpl.TemplateName)
		}
		if t != "" {
			out = append(out, Request{Action: action, Resource: t, Context: ctx})
		}
	}
	if configSet != "" {
		out = append(out, Request{Action: action, Resource: a.prefix("ses") + "configuration-set/" + configSet, Context: ctx})
	}
	if contactList != "" {
		out = append(out, Request{Action: action, Resource: a.prefix("ses") + "contact-list/" + contactList, Context: ctx})
	}
	return out, nil
}

// secret is a secret's ARN from a SecretId (an ARN or a name; a name stands for the secret's
// ARN without its random suffix).
func (a arns) secret(id string) string {
	if strings.HasPrefix(id, "arn:") {
		return id
	}
	return a.prefix("secretsmanager") + "secret:" + id
}

func (a arns) secretsManager(op string, input any) ([]Request, error) {
	if op == "BatchGetSecretValue" {
		// Fields read by name: the functions use a small client of their own, not the SDK's.
		out := []Request{{Action: "secretsmanager:BatchGetSecretValue", Resource: "*"}}
		v := reflect.Indirect(reflect.ValueOf(input))
		if v.Kind() != reflect.Struct {
			return nil, &UnmappedError{Service: "Secrets Manager", Operation: op}
		}
		if f := v.FieldByName("Filters"); f.IsValid() && f.Kind() == reflect.Slice && f.Len() > 0 {
			return nil, &UnmappedError{Service: "Secrets Manager", Operation: op + " with Filters"}
		}
		if ids := v.FieldByName("SecretIdList"); ids.IsValid() && ids.Kind() == reflect.Slice {
			for i := 0; i < ids.Len(); i++ {
				out = append(out, Request{Action: "secretsmanager:GetSecretValue", Resource: a.secret(ids.Index(i).String())})
			}
		}
		return out, nil
	}
	if id, ok := stringField(input, "SecretId"); ok && id != "" {
		return []Request{{Action: "secretsmanager:" + op, Resource: a.secret(id)}}, nil
	}
	return []Request{{Action: "secretsmanager:" + op, Resource: "*"}}, nil
}

// sqs authorizes an operation on the queue its URL names; the batch operations are
// authorized as their single-message actions.
func (a arns) sqs(op string, input any) ([]Request, error) {
	action := map[string]string{
		"SendMessageBatch":             "SendMessage",
		"DeleteMessageBatch":           "DeleteMessage",
		"ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
	}[op]
	if action == "" {
		action = op
	}
	queue := ""
	if u, ok := stringField(input, "QueueUrl"); ok && u != "" {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("SQS %s: queue URL %q: %w", op, u, err)
		}
		segs := strings.Split(strings.Trim(pu.Path, "/"), "/")
		queue = segs[len(segs)-1]
	} else if n, ok := stringField(input, "QueueName"); ok && n != "" {
		queue = n
	}
	if queue == "" {
		if op == "ListQueues" {
			return []Request{{Action: "sqs:" + action, Resource: "*"}}, nil
		}
		return nil, &UnmappedError{Service: "SQS", Operation: op}
	}
	return []Request{{Action: "sqs:" + action, Resource: a.prefix("sqs") + queue}}, nil
}

// s3Actions maps S3 operations to the IAM action AWS checks, and whether on the object
// (bucket/key) or on the bucket.
var s3Actions = map[string]struct {
	action string
	object bool
}{
	"GetObject":                       {"GetObject", true},
	"HeadObject":                      {"GetObject", true},
	"PutObject":                       {"PutObject", true},
	"DeleteObject":                    {"DeleteObject", true},
	"CreateMultipartUpload":           {"PutObject", true},
	"UploadPart":                      {"PutObject", true},
	"CompleteMultipartUpload":         {"PutObject", true},
	"AbortMultipartUpload":            {"AbortMultipartUpload", true},
	"ListParts":                       {"ListMultipartUploadParts", true},
	"GetObjectTagging":                {"GetObjectTagging", true},
	"PutObjectTagging":                {"PutObjectTagging", true},
	"DeleteObjectTagging":             {"DeleteObjectTagging", true},
	"GetObjectAttributes":             {"GetObject", true},
	"ListObjects":                     {"ListBucket", false},
	"ListObjectsV2":                   {"ListBucket", false},
	"HeadBucket":                      {"ListBucket", false},
	"ListMultipartUploads":            {"ListBucketMultipartUploads", false},
	"GetBucketLocation":               {"GetBucketLocation", false},
	"CreateBucket":                    {"CreateBucket", false},
	"DeleteBucket":                    {"DeleteBucket", false},
	"GetBucketLifecycleConfiguration": {"GetLifecycleConfiguration", false},
	"PutBucketLifecycleConfiguration": {"PutLifecycleConfiguration", false},
}

func (a arns) s3(op string, input any) ([]Request, error) {
	bucket, _ := stringField(input, "Bucket")
	key, _ := stringField(input, "Key")
	switch op {
	case "CopyObject":
		// Read the source, write the destination.
		src, _ := stringField(input, "CopySource")
		src, _ = url.PathUnescape(strings.TrimPrefix(src, "/"))
		src, _, _ = strings.Cut(src, "?versionId=")
		return []Request{
			{Action: "s3:GetObject", Resource: "arn:aws:s3:::" + src},
			{Action: "s3:PutObject", Resource: "arn:aws:s3:::" + bucket + "/" + key},
		}, nil
	case "DeleteObjects":
		var out []Request
		for _, k := range objectKeys(input) {
			out = append(out, Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::" + bucket + "/" + k})
		}
		return out, nil
	}
	m, ok := s3Actions[op]
	if !ok || bucket == "" {
		return nil, &UnmappedError{Service: "S3", Operation: op}
	}
	res := "arn:aws:s3:::" + bucket
	if m.object {
		res += "/" + key
	}
	return []Request{{Action: "s3:" + m.action, Resource: res}}, nil
}

// objectKeys reads Delete.Objects[].Key of a DeleteObjects input without importing S3.
func objectKeys(input any) []string {
	v := reflect.ValueOf(input)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	d := v.FieldByName("Delete")
	for d.Kind() == reflect.Pointer && !d.IsNil() {
		d = d.Elem()
	}
	if d.Kind() != reflect.Struct {
		return nil
	}
	objs := d.FieldByName("Objects")
	if objs.Kind() != reflect.Slice {
		return nil
	}
	var keys []string
	for i := 0; i < objs.Len(); i++ {
		if k, ok := stringField(objs.Index(i).Addr().Interface(), "Key"); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// sdkSendInput is a send's input as the SDK's type. A client that does not link the SDK's
// sesv2 module (internal/ses) gives its own struct with the SDK's member names, which are
// also SES's JSON names: a JSON round trip reads it into the SDK's input.
func sdkSendInput(op string, input any) any {
	switch input.(type) {
	case *sesv2.SendEmailInput, *sesv2.SendBulkEmailInput, nil:
		return input
	}
	b, err := json.Marshal(input)
	if err != nil {
		return input
	}
	var out any = &sesv2.SendBulkEmailInput{}
	if op == "SendEmail" {
		out = &sesv2.SendEmailInput{}
	}
	if json.Unmarshal(b, out) != nil {
		return input
	}
	return out
}

// stringField reads a string or *string field of a struct (or pointer to one) by name.
func stringField(input any, name string) (string, bool) {
	v := reflect.ValueOf(input)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return "", false
	}
	f := v.FieldByName(name)
	if !f.IsValid() {
		return "", false
	}
	if f.Kind() == reflect.Pointer {
		if f.IsNil() {
			return "", true
		}
		f = f.Elem()
	}
	if f.Kind() != reflect.String {
		return "", false
	}
	return f.String(), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
