package samtemplate

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func loadRepoTemplate(t *testing.T) *Template {
	t.Helper()
	p, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestRepoTemplateFunctions(t *testing.T) {
	tpl := loadRepoTemplate(t)
	byID := map[string]Function{}
	for _, f := range tpl.Functions() {
		byID[f.LogicalID] = f
	}
	for _, id := range []string{"BulkEnrollFunction", "AdminFunction", "ListEnrollmentsFunction",
		"InvitationsFunction", "ExpireInvitationsFunction", "MailerFunction", "AuditFunction", "MailSweepFunction"} {
		if _, ok := byID[id]; !ok {
			t.Errorf("function %s missing", id)
		}
	}

	bulk := byID["BulkEnrollFunction"]
	if bulk.Timeout != 29*time.Second {
		t.Errorf("BulkEnrollFunction timeout = %v", bulk.Timeout)
	}
	want := []Route{
		{"BulkEnroll", "POST", "/api/bulk_enroll/v1/bulk_enroll"},
		{"AppsemblerBulkEnroll", "POST", "/appsembler/bulk_enroll"},
		{"CreateCourseEnrollment", "POST", "/api/courses/{course_id}/enrollments"},
		{"DeleteEnrollment", "DELETE", "/api/enrollments/{id}"},
		{"PatchEnrollment", "PATCH", "/api/enrollments/{id}"},
		{"ResendInvitation", "POST", "/api/enrollments/{id}/resend"},
		{"ResendCourseInvitations", "POST", "/api/courses/{course_id}/invitations/resend"},
	}
	if len(bulk.Routes) != len(want) {
		t.Fatalf("routes = %+v", bulk.Routes)
	}
	for i := range want {
		if bulk.Routes[i] != want[i] {
			t.Errorf("route %d = %+v, want %+v", i, bulk.Routes[i], want[i])
		}
	}
	if k := bulk.Routes[0].Key(); k != "POST /api/bulk_enroll/v1/bulk_enroll" {
		t.Errorf("route key %q", k)
	}

	exp := byID["ExpireInvitationsFunction"]
	if exp.Timeout != 300*time.Second || len(exp.Schedules) != 1 {
		t.Fatalf("expire: %+v", exp)
	}
	if s := exp.Schedules[0]; s.Rate != time.Hour || s.EventName != "Hourly" || !s.Enabled {
		t.Errorf("schedule = %+v", s)
	}

	for _, id := range []string{"MailerFunction", "AuditFunction"} {
		f := byID[id]
		if len(f.Streams) != 1 {
			t.Fatalf("%s streams = %+v", id, f.Streams)
		}
		s := f.Streams[0]
		// The mailer takes larger batches (ten full SendBulkEmail calls) over a longer window.
		batch, window := 100, time.Second
		if id == "MailerFunction" {
			batch, window = 500, 2*time.Second
		}
		if s.Table != "Table" || s.BatchSize != batch || !s.ReportBatchItemFailures() ||
			s.StartingPosition != "TRIM_HORIZON" || s.MaximumRetryAttempts != 20 ||
			!s.BisectBatchOnFunctionError || s.MaximumBatchingWindow != window {
			t.Errorf("%s stream = %+v", id, s)
		}
	}
	if got := byID["AuditFunction"].Timeout; got != 60*time.Second {
		t.Errorf("audit timeout %v", got)
	}
	// Globals timeout applies where the function sets none.
	if got := byID["AdminFunction"].Timeout; got != 29*time.Second {
		t.Errorf("admin timeout %v", got)
	}

	mailer := byID["MailerFunction"]
	if !contains(mailer.EnvVars, "MAIL_SEND_RATE") || !contains(mailer.EnvVars, "TABLE_NAME") {
		t.Errorf("mailer env vars = %v", mailer.EnvVars)
	}
	if contains(bulk.EnvVars, "MAIL_SEND_RATE") {
		t.Errorf("bulk env vars leak the mailer's: %v", bulk.EnvVars)
	}
}

func TestRepoTemplateEnv(t *testing.T) {
	tpl := loadRepoTemplate(t)
	mailer, _ := tpl.Function("MailerFunction")
	env, unresolved, err := tpl.FunctionEnv(mailer, map[string]string{
		"Stage": "local", "Table": "rollcall-local", "PublicBaseUrl": "http://127.0.0.1:3000",
	})
	if err != nil {
		t.Fatal(err)
	}
	if env["STAGE"] != "local" || env["TABLE_NAME"] != "rollcall-local" || env["MAIL_SEND_RATE"] != "10" ||
		env["PUBLIC_BASE_URL"] != "http://127.0.0.1:3000" {
		t.Errorf("env = %v", env)
	}
	// No defaults: the JWT parameters, MailFrom, and the signing secret (a resource: the
	// local stage takes SIGNING_SECRET from the environment instead).
	for _, n := range []string{"JWT_JWKS_URL", "MAIL_FROM", "SIGNING_SECRET_ARN"} {
		if !contains(unresolved, n) {
			t.Errorf("%s should be unresolved: %v", n, unresolved)
		}
	}

	// Without a PublicBaseUrl the condition picks the API's own URL, which needs HttpApi.
	env, _, err = tpl.FunctionEnv(mailer, map[string]string{"HttpApi": "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	if got := env["PUBLIC_BASE_URL"]; got != "https://abc123.execute-api.us-east-1.amazonaws.com" {
		t.Errorf("PUBLIC_BASE_URL = %q", got)
	}
}

func TestRepoTemplateTable(t *testing.T) {
	tpl := loadRepoTemplate(t)
	spec, err := tpl.Table("rollcall-test")
	if err != nil {
		t.Fatal(err)
	}
	in := spec.Input
	if spec.LogicalID != "Table" || spec.TTLAttribute != "ttl" || aws.ToString(in.TableName) != "rollcall-test" {
		t.Errorf("spec = %+v", spec)
	}
	if in.BillingMode != types.BillingModePayPerRequest || in.ProvisionedThroughput != nil {
		t.Errorf("billing %v %v", in.BillingMode, in.ProvisionedThroughput)
	}
	if len(in.AttributeDefinitions) != 13 || len(in.KeySchema) != 2 ||
		aws.ToString(in.KeySchema[0].AttributeName) != "PK" || in.KeySchema[0].KeyType != types.KeyTypeHash {
		t.Errorf("keys %+v %+v", in.AttributeDefinitions, in.KeySchema)
	}
	if len(in.GlobalSecondaryIndexes) != 6 {
		t.Fatalf("gsis %+v", in.GlobalSecondaryIndexes)
	}
	g1, g3 := in.GlobalSecondaryIndexes[0], in.GlobalSecondaryIndexes[2]
	if aws.ToString(g1.IndexName) != "GSI1" || g1.Projection.ProjectionType != types.ProjectionTypeInclude ||
		!contains(g1.Projection.NonKeyAttributes, "expires_at") || len(g1.KeySchema) != 2 {
		t.Errorf("GSI1 %+v", g1)
	}
	if aws.ToString(g3.IndexName) != "GSI3" || g3.Projection.ProjectionType != types.ProjectionTypeKeysOnly || len(g3.KeySchema) != 1 {
		t.Errorf("GSI3 %+v", g3)
	}
	if ss := in.StreamSpecification; ss == nil || !aws.ToBool(ss.StreamEnabled) || ss.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream %+v", ss)
	}
	// Each call returns a fresh input.
	again, _ := tpl.Table("other")
	if again.Input == in || aws.ToString(in.TableName) != "rollcall-test" {
		t.Error("Table shares its input between calls")
	}
}

func TestRepoTemplateEmailTemplates(t *testing.T) {
	tpl := loadRepoTemplate(t)
	ets, err := tpl.EmailTemplates(map[string]string{"Stage": "local"})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, et := range ets {
		names = append(names, et.Name)
		if et.Subject == "" || et.Text == "" || et.HTML == "" {
			t.Errorf("%s incomplete: %+v", et.Name, et)
		}
	}
	// Every template in English and in Spanish, French and Brazilian Portuguese.
	var want []string
	for _, kind := range []string{"enrolled", "invited", "unenrolled", "reminder", "enrollment_ending"} {
		for _, lang := range []string{"", "-es", "-fr", "-pt-br"} {
			want = append(want, "rollcall-local-"+kind+lang)
		}
	}
	for _, lang := range []string{"", "-es", "-fr", "-pt-br"} {
		want = append(want, "rollcall-local-job_finished"+lang)
	}
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("names = %v, want %v", names, want)
	}
	for _, et := range ets {
		if strings.HasPrefix(et.Name, "rollcall-local-invited") && (!strings.Contains(et.Text, "{{invitation_url}}") ||
			!strings.Contains(et.HTML, "{{invitation_url}}") || !strings.Contains(et.Text, "{{expires_at}}")) {
			t.Errorf("%s has no link or date: %+v", et.Name, et)
		}
		if et.Name == "rollcall-local-invited" && et.Subject != "You have been invited to {{course_title}}" {
			t.Errorf("invited = %+v", et)
		}
	}
	// The parameter default applies without subs.
	ets, err = tpl.EmailTemplates(nil)
	if err != nil || ets[0].Name != "rollcall-prod-enrolled" {
		t.Errorf("default stage: %v %v", ets, err)
	}
}

const inline = `
Parameters:
  Stage: {Type: String, Default: dev}
  Count: {Type: Number, Default: 3}
  Empty: {Type: String, Default: ''}
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
  NotDev: !Not [!Condition IsDev]
  Both: !And [!Condition IsDev, !Not [!Equals [!Ref Empty, x]]]
Globals:
  Function:
    Timeout: 7
    Environment:
      Variables:
        A: !Sub '${Stage}-${AWS::Region}-${!Literal}'
        B: !Join ['-', [x, !Ref Stage, !Select [1, [p, q, r]]]]
        C: !If [IsDev, yes-dev, !Ref AWS::NoValue]
        D: !GetAtt Tbl.Arn
        E: !Sub ['${X}/${Count}', {X: !Ref Stage}]
        F: !If [Both, both, neither]
Resources:
  Tbl:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub '${AWS::StackName}-t'
      BillingMode: PROVISIONED
      ProvisionedThroughput: {ReadCapacityUnits: !Ref Count, WriteCapacityUnits: 2}
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}, {AttributeName: g, AttributeType: N}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: byG
          KeySchema: [{AttributeName: g, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
          ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
      Tags: [{Key: k, Value: !GetAtt Nothing.Here}]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Z: {Type: HttpApi, Properties: {Method: get, Path: '/z/{id}'}}
        A: {Type: HttpApi, Properties: {Method: ANY, Path: '/a/{proxy+}'}}
        Catch: {Type: HttpApi}
        Tick: {Type: Schedule, Properties: {Schedule: rate(5 minutes), Enabled: false}}
        Cron: {Type: Schedule, Properties: {Schedule: 'cron(0 12 * * ? *)'}}
        S: {Type: DynamoDB, Properties: {Stream: !GetAtt Tbl.StreamArn, StartingPosition: LATEST}}
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt JobQueue.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures]}}
`

func TestInlineTemplate(t *testing.T) {
	tpl, err := Parse([]byte(inline))
	if err != nil {
		t.Fatal(err)
	}
	fn, ok := tpl.Function("Fn")
	if !ok {
		t.Fatal("no Fn")
	}
	if fn.Timeout != 7*time.Second {
		t.Errorf("timeout %v", fn.Timeout)
	}
	// Routes keep the file's order.
	if len(fn.Routes) != 3 || fn.Routes[0] != (Route{"Z", "GET", "/z/{id}"}) ||
		fn.Routes[1] != (Route{"A", "ANY", "/a/{proxy+}"}) || fn.Routes[2].Path != DefaultRoute || fn.Routes[2].Key() != "$default" {
		t.Errorf("routes %+v", fn.Routes)
	}
	if len(fn.Schedules) != 2 || fn.Schedules[0].Rate != 5*time.Minute || fn.Schedules[0].Enabled ||
		fn.Schedules[1].Rate != 0 || fn.Schedules[1].Expression != "cron(0 12 * * ? *)" {
		t.Errorf("schedules %+v", fn.Schedules)
	}
	if s := fn.Streams[0]; s.Table != "Tbl" || s.BatchSize != 100 || s.MaximumRetryAttempts != -1 || s.ReportBatchItemFailures() {
		t.Errorf("stream %+v", s)
	}

	if len(fn.Queues) != 1 || fn.Queues[0].EventName != "Jobs" || fn.Queues[0].QueueID != "JobQueue" ||
		fn.Queues[0].BatchSize != 5 || !fn.Queues[0].ReportBatchItemFailures() {
		t.Errorf("queues %+v", fn.Queues)
	}

	env, unresolved, err := tpl.FunctionEnv(fn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if env["A"] != "dev-us-east-1-${Literal}" || env["B"] != "x-dev-q" || env["C"] != "yes-dev" ||
		env["E"] != "dev/3" || env["F"] != "both" {
		t.Errorf("env %v", env)
	}
	if len(unresolved) != 1 || unresolved[0] != "D" {
		t.Errorf("unresolved %v", unresolved)
	}
	env, _, _ = tpl.FunctionEnv(fn, map[string]string{"Stage": "prod", "Tbl.Arn": "arn:x"})
	if _, ok := env["C"]; ok || env["D"] != "arn:x" || env["F"] != "neither" {
		t.Errorf("env prod %v", env)
	}
	if v, err := tpl.Resolve(map[string]any{"Condition": "NotDev"}, nil); err != nil || v != false {
		t.Errorf("NotDev with Stage default: %v %v", v, err)
	}
	if v, err := tpl.Resolve(map[string]any{"Condition": "NotDev"}, map[string]string{"Stage": "x"}); err != nil || v != true {
		t.Errorf("NotDev with Stage x: %v %v", v, err)
	}

	spec, err := tpl.Table("local")
	if err != nil {
		t.Fatal(err)
	}
	in := spec.Input
	if in.BillingMode != types.BillingModeProvisioned || aws.ToInt64(in.ProvisionedThroughput.ReadCapacityUnits) != 3 ||
		aws.ToInt64(in.GlobalSecondaryIndexes[0].ProvisionedThroughput.WriteCapacityUnits) != 1 ||
		in.StreamSpecification != nil || spec.TTLAttribute != "" || aws.ToString(in.TableName) != "local" {
		t.Errorf("table %+v", in)
	}
}

func TestUnresolvedError(t *testing.T) {
	tpl, err := Parse([]byte(inline))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.ResolveString(map[string]any{"Fn::GetAtt": []any{"X", "Y"}}, nil)
	var u *UnresolvedError
	if !errors.As(err, &u) || u.Ref != "X.Y" {
		t.Errorf("err = %v", err)
	}
}

func TestParseRate(t *testing.T) {
	good := map[string]time.Duration{
		"rate(1 minute)": time.Minute, "rate(15 minutes)": 15 * time.Minute,
		"rate(1 hour)": time.Hour, "rate(2 hours)": 2 * time.Hour,
		"rate(1 day)": 24 * time.Hour, "rate(7 days)": 7 * 24 * time.Hour,
	}
	for expr, want := range good {
		if got, err := ParseRate(expr); err != nil || got != want {
			t.Errorf("%s = %v, %v", expr, got, err)
		}
	}
	for _, expr := range []string{"rate(1 hours)", "rate(2 hour)", "rate(0 minutes)", "rate(5 seconds)", "cron(0 * * * ? *)", "rate(x hours)"} {
		if _, err := ParseRate(expr); err == nil {
			t.Errorf("%s: want an error", expr)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"not a mapping": "- a\n- b\n",
		"no resources":  "Parameters: {}\n",
		"bad rate": `Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        T: {Type: Schedule, Properties: {Schedule: rate(1 hours)}}
`,
		"route without path": `Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        R: {Type: HttpApi, Properties: {Method: GET}}
`,
		"bad getatt": "Resources:\n  X:\n    Type: T\n    Properties: {A: !GetAtt nodot}\n",
		// An event type the local stack does not know would never run locally: say so.
		"unknown event type": `Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Up: {Type: S3, Properties: {Bucket: !Ref B, Events: s3:ObjectCreated:*}}
`,
		"REST Api event": `Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        R: {Type: Api, Properties: {Method: GET, Path: /x}}
`,
		"event without a type": `Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        R: {Properties: {Method: GET, Path: /x}}
`,
		"SQS without a queue": `Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Q: {Type: SQS, Properties: {BatchSize: 5}}
`,
	} {
		if _, err := Parse([]byte(src)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRepoTemplateJobQueuesAndBucket(t *testing.T) {
	tpl, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	qs, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]QueueSpec{}
	order := map[string]int{}
	for i, q := range qs {
		byID[q.LogicalID] = q
		order[q.LogicalID] = i
	}
	jq := byID["JobQueue"]
	if jq.DeadLetterQueue != "JobDeadLetterQueue" || jq.MaxReceiveCount != 5 || jq.VisibilityTimeout != 360*time.Second {
		t.Errorf("JobQueue = %+v", jq)
	}
	if order["JobDeadLetterQueue"] > order["JobQueue"] {
		t.Errorf("the dead-letter queue must come before the queue that names it: %v", qs)
	}
	fn, ok := tpl.Function("JobWorkerFunction")
	if !ok || len(fn.Queues) != 1 {
		t.Fatalf("JobWorkerFunction queues: %+v", fn.Queues)
	}
	ev := fn.Queues[0]
	if ev.QueueID != "JobQueue" || ev.BatchSize != 1 || ev.MaximumBatchingWindow != 0 || !ev.ReportBatchItemFailures() {
		t.Errorf("worker event = %+v", ev)
	}
	bs, err := tpl.Buckets()
	if err != nil || len(bs) != 1 || bs[0].LogicalID != "UploadsBucket" || bs[0].ExpirationDays != 7 {
		t.Errorf("buckets = %+v, %v", bs, err)
	}
}
