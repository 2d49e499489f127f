package samtemplate

import (
	"strings"
	"testing"
)

const policyTemplateYAML = `
Parameters:
  Stage: {Type: String, Default: prod}
  MailFrom: {Type: String}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {KeySchema: [{AttributeName: PK, KeyType: HASH}]}
  Jobs:
    Type: AWS::SQS::Queue
  Secret:
    Type: AWS::SecretsManager::Secret
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Q: {Type: SQS, Properties: {Queue: !GetAtt Jobs.Arn}}
      Policies:
        - DynamoDBReadPolicy: {TableName: !Ref Table}
        - SQSSendMessagePolicy: {QueueName: !GetAtt Jobs.QueueName}
        - AWSSecretsManagerGetSecretValuePolicy: {SecretArn: !Ref Secret}
        - Statement:
            - Effect: Deny
              Action: dynamodb:Scan
              Resource: !Sub '${Table.Arn}/index/*'
            - Effect: Allow
              Action: [ses:SendBulkEmail]
              Resource: '*'
              Condition:
                StringEquals:
                  ses:FromAddress: !Ref MailFrom
`

func TestFunctionPolicy(t *testing.T) {
	tpl, err := Parse([]byte(policyTemplateYAML))
	if err != nil {
		t.Fatal(err)
	}
	sts, err := tpl.FunctionPolicy("Fn", map[string]string{"Table": "t-local", "MailFrom": "a@x.org"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range sts {
		line := s.Effect + " " + strings.Join(s.Action, ",") + " on " + strings.Join(s.Resource, ",")
		for op, kv := range s.Condition {
			for k, v := range kv {
				line += " if " + op + " " + k + "=" + strings.Join(v, ",")
			}
		}
		lines = append(lines, line)
	}
	got := strings.Join(lines, "\n")
	const arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t-local"
	for _, want := range []string{
		// SAM's managed policies: logs always, SQS polling for the SQS event.
		"Allow logs:CreateLogGroup,logs:CreateLogStream,logs:PutLogEvents on *",
		"Allow sqs:ReceiveMessage,sqs:DeleteMessage,sqs:GetQueueAttributes,",
		"Allow dynamodb:GetItem,dynamodb:Scan,dynamodb:Query,dynamodb:BatchGetItem,dynamodb:DescribeTable on " + arn + "," + arn + "/index/*",
		"Allow sqs:SendMessage* on arn:aws:sqs:us-east-1:123456789012:Jobs",
		"Allow secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:123456789012:secret:Secret-",
		"Deny dynamodb:Scan on " + arn + "/index/*",
		"Allow ses:SendBulkEmail on * if StringEquals ses:FromAddress=a@x.org",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}

	for name, yml := range map[string]string{
		"unknown SAM policy template": "- NoSuchPolicy: {}",
		"missing parameter":           "- DynamoDBCrudPolicy: {}",
		"unknown managed policy":      "- AmazonDynamoDBFullAccess",
		"no Effect":                   "- Statement: [{Action: 's3:*', Resource: '*'}]",
		"Principal":                   "- Statement: [{Effect: Allow, Principal: '*', Action: 's3:*', Resource: '*'}]",
		"no Resource":                 "- Statement: [{Effect: Allow, Action: 's3:*'}]",
	} {
		src := strings.Replace(policyTemplateYAML, "        - DynamoDBReadPolicy: {TableName: !Ref Table}\n", "        "+yml+"\n", 1)
		tpl, err := Parse([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := tpl.FunctionPolicy("Fn", map[string]string{"MailFrom": "a@x.org"}); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
