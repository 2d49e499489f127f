package samtemplate

import (
	"fmt"
	"slices"
	"strings"
)

// PolicyStatement is one statement of a function's IAM role, with intrinsics evaluated the way
// the local stack sees the stack (see LocalResourceValues).
type PolicyStatement struct {
	Sid         string
	Effect      string // "Allow" or "Deny"
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// Condition maps an operator (StringEquals, ForAnyValue:StringLike, ...) to condition keys
	// and their values.
	Condition map[string]map[string][]string
	// Source tells where the statement comes from (Policies[0].Statement[1], a SAM policy
	// template, a managed policy SAM attaches for an event), for messages.
	Source string
}

// Local account and region: what ${AWS::AccountId} and ${AWS::Region} evaluate to, and so what
// the local IAM check puts in the ARNs of the resources a call touches.
const (
	LocalAccountID = "123456789012"
	LocalRegion    = "us-east-1"
)

// LocalResourceValues returns values (see Resolve) extended with what each resource of the
// template is called locally: !Ref and the usual !GetAtt attributes (Arn, StreamArn,
// QueueName, ...), as ARNs in the local account and region. Entries of values win, so the
// caller names what it runs under another name (e.g. "Table": the test's table name).
func (t *Template) LocalResourceValues(values map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range values {
		out[k] = v
	}
	set := func(k, v string) {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	prefix := func(service string) string {
		return "arn:aws:" + service + ":" + LocalRegion + ":" + LocalAccountID + ":"
	}
	// A property naming the resource (TableName, QueueName, ...) if it resolves, else the
	// logical id, as CloudFormation would generate a name from it.
	name := func(r Resource, prop string) string {
		if out[r.LogicalID] != "" {
			return out[r.LogicalID]
		}
		if v, ok := r.Properties[prop]; ok {
			if s, err := t.ResolveString(v, values); err == nil && s != "" {
				return s
			}
		}
		return r.LogicalID
	}
	for _, id := range t.ResourceIDs {
		r := t.Resources[id]
		switch r.Type {
		case TypeTable:
			n := name(r, "TableName")
			set(id, n)
			set(id+".Arn", prefix("dynamodb")+"table/"+n)
			set(id+".StreamArn", prefix("dynamodb")+"table/"+n+"/stream/local")
		case "AWS::SQS::Queue":
			n := out[id+".QueueName"]
			if n == "" {
				n = r.LogicalID
				if v, ok := r.Properties["QueueName"]; ok {
					if s, err := t.ResolveString(v, values); err == nil && s != "" {
						n = s
					}
				}
			}
			set(id+".QueueName", n)
			set(id, "https://sqs."+LocalRegion+".amazonaws.com/"+LocalAccountID+"/"+n)
			set(id+".QueueUrl", out[id])
			set(id+".Arn", prefix("sqs")+n)
		case "AWS::S3::Bucket":
			n := name(r, "BucketName")
			set(id, n)
			set(id+".Arn", "arn:aws:s3:::"+n)
		case "AWS::SecretsManager::Secret":
			// !Ref of a secret is its ARN; the six characters after the name are random in AWS.
			n := r.LogicalID
			if v, ok := r.Properties["Name"]; ok {
				if s, err := t.ResolveString(v, values); err == nil && s != "" {
					n = s
				}
			}
			set(id, prefix("secretsmanager")+"secret:"+n+"-local0")
			set(id+".Id", out[id])
		case "AWS::SES::ConfigurationSet":
			set(id, name(r, "Name"))
		case TypeEmailTemplate:
			n := r.LogicalID
			if v, ok := asMap(r.Properties["Template"])["TemplateName"]; ok {
				if s, err := t.ResolveString(v, values); err == nil && s != "" {
					n = s
				}
			}
			set(id, n)
		case "AWS::SNS::Topic":
			n := name(r, "TopicName")
			set(id+".TopicName", n)
			set(id, prefix("sns")+n)
			set(id+".TopicArn", out[id])
		case TypeFunction:
			set(id, id)
			set(id+".Arn", prefix("lambda")+"function:"+id)
		case "AWS::Logs::LogGroup":
			n := name(r, "LogGroupName")
			set(id, n)
			set(id+".Arn", prefix("logs")+"log-group:"+n+":*")
		default:
			set(id, id)
		}
	}
	return out
}

// FunctionPolicy returns the statements of a function's role: its Policies (inline
// statements, SAM policy templates, the managed policies the local stack knows) and the
// managed policies SAM attaches by itself (logs always, X-Ray with Tracing: Active, stream and
// queue reading for DynamoDB and SQS events). values are as for LocalResourceValues.
// A policy the local stack cannot evaluate is an error, not a silent grant or denial.
func (t *Template) FunctionPolicy(logicalID string, values map[string]string) ([]PolicyStatement, error) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != TypeFunction {
		return nil, fmt.Errorf("samtemplate: no function %s", logicalID)
	}
	f, _ := t.Function(logicalID)
	vals := t.LocalResourceValues(values)
	var out []PolicyStatement

	out = append(out, managedPolicies["AWSLambdaBasicExecutionRole"]...)
	tracing := asString(t.globalFunction["Tracing"])
	if v, ok := r.Properties["Tracing"].(string); ok {
		tracing = v
	}
	if tracing == "Active" {
		out = append(out, managedPolicies["AWSXrayWriteOnlyAccess"]...)
	}
	if len(f.Streams) > 0 {
		out = append(out, managedPolicies["AWSLambdaDynamoDBExecutionRole"]...)
	}
	if len(f.Queues) > 0 {
		out = append(out, managedPolicies["AWSLambdaSQSQueueExecutionRole"]...)
	}

	raw, ok := r.Properties["Policies"]
	if !ok {
		return out, nil
	}
	pv, err := t.Resolve(raw, vals)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %s Policies: %w", logicalID, err)
	}
	var items []any
	switch x := pv.(type) {
	case []any:
		items = x
	case nil:
	default: // SAM also takes a single policy
		items = []any{x}
	}
	for i, item := range items {
		src := fmt.Sprintf("%s Policies[%d]", logicalID, i)
		switch p := item.(type) {
		case string:
			name := p
			if j := strings.LastIndex(p, "/"); strings.HasPrefix(p, "arn:") && j >= 0 {
				name = p[j+1:]
			}
			ms, ok := managedPolicies[name]
			if !ok {
				return nil, fmt.Errorf("samtemplate: %s: managed policy %q is not known to the local stack; grant what the function needs with inline statements or a SAM policy template", src, p)
			}
			out = append(out, ms...)
		case map[string]any:
			if st, ok := p["Statement"]; ok {
				list, ok := st.([]any)
				if !ok {
					list = []any{st}
				}
				for j, s := range list {
					ps, err := parseStatement(s, fmt.Sprintf("%s.Statement[%d]", src, j))
					if err != nil {
						return nil, err
					}
					out = append(out, ps)
				}
				continue
			}
			if len(p) != 1 {
				return nil, fmt.Errorf("samtemplate: %s: want a Statement list or one SAM policy template", src)
			}
			for name, params := range p {
				ps, err := expandPolicyTemplate(name, asMap(params), src)
				if err != nil {
					return nil, err
				}
				out = append(out, ps...)
			}
		default:
			return nil, fmt.Errorf("samtemplate: %s: unsupported policy %T", src, item)
		}
	}
	return out, nil
}

func parseStatement(v any, src string) (PolicyStatement, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return PolicyStatement{}, fmt.Errorf("samtemplate: %s: a statement is a mapping", src)
	}
	ps := PolicyStatement{Sid: asString(m["Sid"]), Effect: asString(m["Effect"]), Source: src}
	for k := range m {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			// Principal belongs in resource policies; anything else is a typo IAM would refuse.
			return ps, fmt.Errorf("samtemplate: %s: %s is not allowed in an identity policy statement", src, k)
		}
	}
	if ps.Effect != "Allow" && ps.Effect != "Deny" {
		return ps, fmt.Errorf("samtemplate: %s: Effect %q: want Allow or Deny", src, ps.Effect)
	}
	var err error
	for _, f := range []struct {
		key string
		dst *[]string
	}{{"Action", &ps.Action}, {"NotAction", &ps.NotAction}, {"Resource", &ps.Resource}, {"NotResource", &ps.NotResource}} {
		if v, ok := m[f.key]; ok {
			if *f.dst, err = stringsOf(v); err != nil {
				return ps, fmt.Errorf("samtemplate: %s %s: %w", src, f.key, err)
			}
		}
	}
	if (len(ps.Action) == 0) == (len(ps.NotAction) == 0) {
		return ps, fmt.Errorf("samtemplate: %s: want Action or NotAction", src)
	}
	if (len(ps.Resource) == 0) == (len(ps.NotResource) == 0) {
		return ps, fmt.Errorf("samtemplate: %s: want Resource or NotResource", src)
	}
	if c, ok := m["Condition"]; ok {
		cm, ok := c.(map[string]any)
		if !ok {
			return ps, fmt.Errorf("samtemplate: %s: Condition is a mapping", src)
		}
		ps.Condition = map[string]map[string][]string{}
		for op, kv := range cm {
			km, ok := kv.(map[string]any)
			if !ok {
				return ps, fmt.Errorf("samtemplate: %s: Condition %s is a mapping of keys", src, op)
			}
			ps.Condition[op] = map[string][]string{}
			for k, v := range km {
				vals, err := stringsOf(v)
				if err != nil {
					return ps, fmt.Errorf("samtemplate: %s: Condition %s %s: %w", src, op, k, err)
				}
				ps.Condition[op][k] = vals
			}
		}
	}
	return ps, nil
}

// stringsOf takes a scalar or a list of scalars.
func stringsOf(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, err := scalarString(item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// samPolicyTemplate is a SAM policy template: its parameters and its statements, where
// ${Param} is a parameter and ${AWS::Region}, ${AWS::AccountId} the local ones.
type samPolicyTemplate struct {
	params     []string
	statements []PolicyStatement
}

func allow(actions []string, resources ...string) PolicyStatement {
	return PolicyStatement{Effect: "Allow", Action: actions, Resource: resources}
}

const arnPrefix = "arn:aws:${service}:${AWS::Region}:${AWS::AccountId}:"

func arnOf(service, rest string) string {
	return strings.ReplaceAll(arnPrefix, "${service}", service) + rest
}

// samPolicyTemplates are the SAM policy templates the local stack can expand, as SAM defines
// them (samtranslator's policy_templates.json). Add one here before the template uses it.
var samPolicyTemplates = map[string]samPolicyTemplate{
	"DynamoDBCrudPolicy": {[]string{"TableName"}, []PolicyStatement{allow(
		[]string{"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query",
			"dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable",
			"dynamodb:ConditionCheckItem"},
		arnOf("dynamodb", "table/${TableName}"), arnOf("dynamodb", "table/${TableName}/index/*"))}},
	"DynamoDBReadPolicy": {[]string{"TableName"}, []PolicyStatement{allow(
		[]string{"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"},
		arnOf("dynamodb", "table/${TableName}"), arnOf("dynamodb", "table/${TableName}/index/*"))}},
	"DynamoDBWritePolicy": {[]string{"TableName"}, []PolicyStatement{allow(
		[]string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"},
		arnOf("dynamodb", "table/${TableName}"), arnOf("dynamodb", "table/${TableName}/index/*"))}},
	"DynamoDBStreamReadPolicy": {[]string{"TableName", "StreamName"}, []PolicyStatement{
		allow([]string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
			arnOf("dynamodb", "table/${TableName}/stream/${StreamName}")),
		allow([]string{"dynamodb:ListStreams"}, arnOf("dynamodb", "table/${TableName}/stream/*"))}},
	"SQSPollerPolicy": {[]string{"QueueName"}, []PolicyStatement{allow(
		[]string{"sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessage",
			"sqs:DeleteMessageBatch", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
		arnOf("sqs", "${QueueName}"))}},
	"SQSSendMessagePolicy": {[]string{"QueueName"}, []PolicyStatement{allow(
		[]string{"sqs:SendMessage*"}, arnOf("sqs", "${QueueName}"))}},
	"S3ReadPolicy": {[]string{"BucketName"}, []PolicyStatement{allow(
		[]string{"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:GetObjectVersion", "s3:GetLifecycleConfiguration"},
		"arn:aws:s3:::${BucketName}", "arn:aws:s3:::${BucketName}/*")}},
	"S3WritePolicy": {[]string{"BucketName"}, []PolicyStatement{allow(
		[]string{"s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"},
		"arn:aws:s3:::${BucketName}", "arn:aws:s3:::${BucketName}/*")}},
	"S3CrudPolicy": {[]string{"BucketName"}, []PolicyStatement{allow(
		[]string{"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:GetObjectVersion", "s3:PutObject",
			"s3:PutObjectAcl", "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:DeleteObject"},
		"arn:aws:s3:::${BucketName}", "arn:aws:s3:::${BucketName}/*")}},
	"SESCrudPolicy": {[]string{"IdentityName"}, []PolicyStatement{allow(
		[]string{"ses:GetIdentityVerificationAttributes", "ses:SendEmail", "ses:SendRawEmail", "ses:VerifyEmailIdentity"},
		arnOf("ses", "identity/${IdentityName}"))}},
	"SESBulkTemplatedCrudPolicy": {[]string{"IdentityName"}, []PolicyStatement{allow(
		[]string{"ses:GetIdentityVerificationAttributes", "ses:SendEmail", "ses:SendRawEmail", "ses:SendTemplatedEmail",
			"ses:SendBulkTemplatedEmail", "ses:VerifyEmailIdentity"},
		arnOf("ses", "identity/${IdentityName}"))}},
	"SESBulkTemplatedCrudPolicy_v2": {[]string{"IdentityName", "TemplateName"}, []PolicyStatement{
		allow([]string{"ses:SendEmail", "ses:SendRawEmail", "ses:SendTemplatedEmail", "ses:SendBulkTemplatedEmail"},
			arnOf("ses", "identity/${IdentityName}"), arnOf("ses", "template/${TemplateName}")),
		allow([]string{"ses:GetIdentityVerificationAttributes", "ses:VerifyEmailIdentity"}, "*")}},
	"SESEmailTemplateCrudPolicy": {nil, []PolicyStatement{allow(
		[]string{"ses:CreateTemplate", "ses:GetTemplate", "ses:ListTemplates", "ses:UpdateTemplate", "ses:DeleteTemplate",
			"ses:TestRenderTemplate"}, "*")}},
	"AWSSecretsManagerGetSecretValuePolicy": {[]string{"SecretArn"}, []PolicyStatement{allow(
		[]string{"secretsmanager:GetSecretValue"}, "${SecretArn}")}},
	"CloudWatchPutMetricPolicy": {nil, []PolicyStatement{allow([]string{"cloudwatch:PutMetricData"}, "*")}},
	"SNSPublishMessagePolicy": {[]string{"TopicName"}, []PolicyStatement{allow(
		[]string{"sns:Publish"}, arnOf("sns", "${TopicName}"))}},
}

// managedPolicies are the AWS managed policies SAM attaches to function roles, as far as a
// function's own calls go.
var managedPolicies = map[string][]PolicyStatement{
	"AWSLambdaBasicExecutionRole": {{Effect: "Allow", Source: "AWSLambdaBasicExecutionRole",
		Action: []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{"*"}}},
	"AWSXrayWriteOnlyAccess": {{Effect: "Allow", Source: "AWSXrayWriteOnlyAccess",
		Action: []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
			"xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"}, Resource: []string{"*"}}},
	"AWSLambdaDynamoDBExecutionRole": {{Effect: "Allow", Source: "AWSLambdaDynamoDBExecutionRole",
		Action: []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
			"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{"*"}}},
	"AWSLambdaSQSQueueExecutionRole": {{Effect: "Allow", Source: "AWSLambdaSQSQueueExecutionRole",
		Action: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
			"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{"*"}}},
}

func expandPolicyTemplate(name string, params map[string]any, src string) ([]PolicyStatement, error) {
	pt, ok := samPolicyTemplates[name]
	if !ok {
		return nil, fmt.Errorf("samtemplate: %s: SAM policy template %s is not known to the local stack (known: %s)",
			src, name, strings.Join(sortedKeys(samPolicyTemplates), ", "))
	}
	subs := []string{"${AWS::Region}", LocalRegion, "${AWS::AccountId}", LocalAccountID}
	for _, p := range pt.params {
		v, ok := params[p]
		if !ok {
			return nil, fmt.Errorf("samtemplate: %s: %s needs the parameter %s", src, name, p)
		}
		s, err := scalarString(v)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: %s: %s %s: %w", src, name, p, err)
		}
		subs = append(subs, "${"+p+"}", s)
	}
	for p := range params {
		if !slices.Contains(pt.params, p) {
			return nil, fmt.Errorf("samtemplate: %s: %s has no parameter %s", src, name, p)
		}
	}
	rep := strings.NewReplacer(subs...)
	out := make([]PolicyStatement, 0, len(pt.statements))
	for _, s := range pt.statements {
		c := s
		c.Source = src + " " + name
		c.Action = append([]string(nil), s.Action...)
		c.Resource = make([]string, len(s.Resource))
		for i, r := range s.Resource {
			c.Resource[i] = rep.Replace(r)
		}
		out = append(out, c)
	}
	return out, nil
}
