package localstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestEnsureTableIdempotentAndDrift(t *testing.T) {
	db, table := testenv.NewTable(t) // created by EnsureTable
	env := testenv.Start(t)
	ctx := context.Background()
	if err := localstack.EnsureTable(ctx, db, env.Template, table); err != nil {
		t.Fatalf("second EnsureTable: %v", err)
	}

	// Global indexes are brought in line: a missing one is created, a changed projection rebuilt,
	// an extra one dropped.
	spec, err := env.Template.Table("rollcall-drift-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		t.Fatal(err)
	}
	name := aws.ToString(spec.Input.TableName)
	gsis := spec.Input.GlobalSecondaryIndexes
	missing := aws.ToString(gsis[len(gsis)-1].IndexName)
	changed := aws.ToString(gsis[0].IndexName)
	wantProj := projectionOf(gsis[0])
	spec.Input.GlobalSecondaryIndexes = append([]types.GlobalSecondaryIndex(nil), gsis[:len(gsis)-1]...)
	spec.Input.GlobalSecondaryIndexes[0].Projection = &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}
	spec.Input.GlobalSecondaryIndexes = append(spec.Input.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
		IndexName:  aws.String("Extra"),
		KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("SK"), KeyType: types.KeyTypeHash}},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	})
	spec.Input.AttributeDefinitions = usedAttributes(spec.Input)
	if _, err := db.CreateTable(ctx, spec.Input); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
	if err := localstack.EnsureTable(ctx, db, env.Template, name); err != nil {
		t.Fatalf("reconcile indexes: %v", err)
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		got[aws.ToString(g.IndexName)] = projectionOf(types.GlobalSecondaryIndex{Projection: g.Projection})
	}
	if _, ok := got[missing]; !ok || got[changed] != wantProj || got["Extra"] != "" || len(got) != len(gsis) {
		t.Errorf("indexes after EnsureTable: %v (want %s added, %s = %s, Extra gone)", got, missing, changed, wantProj)
	}

	// A different table key cannot be fixed in place.
	spec, _ = env.Template.Table(name + "-key")
	badKey := aws.ToString(spec.Input.TableName)
	spec.Input.KeySchema = spec.Input.KeySchema[:1]
	spec.Input.AttributeDefinitions = usedAttributes(spec.Input)
	if _, err := db.CreateTable(ctx, spec.Input); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &badKey}) })
	var drift *localstack.TableDriftError
	if err := localstack.EnsureTable(ctx, db, env.Template, badKey); !errors.As(err, &drift) || len(drift.Differences) != 1 {
		t.Errorf("key drift error = %v", err)
	}

	// A table created without its stream gets it.
	spec, _ = env.Template.Table(name + "-nostream")
	noStream := aws.ToString(spec.Input.TableName)
	spec.Input.StreamSpecification = nil
	if _, err := db.CreateTable(ctx, spec.Input); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &noStream}) })
	if err := localstack.EnsureTable(ctx, db, env.Template, noStream); err != nil {
		t.Fatal(err)
	}
	out, err = db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &noStream})
	if err != nil || out.Table.StreamSpecification == nil || out.Table.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream not enabled: %+v %v", out.Table.StreamSpecification, err)
	}
}

func TestEnsureEmailTemplatesUpdates(t *testing.T) {
	env := testenv.Start(t)
	ses := testenv.SES(t)
	ctx := context.Background()
	// testenv created them already; a second run updates in place.
	if err := localstack.EnsureEmailTemplates(ctx, ses, env.Template, testenv.Stage); err != nil {
		t.Fatal(err)
	}
	got, err := ses.GetEmailTemplate(ctx, &sesv2.GetEmailTemplateInput{TemplateName: aws.String("rollcall-local-unenrolled")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.TemplateContent.Subject) != "You have been unenrolled from {{course_title}}" {
		t.Errorf("subject %q", aws.ToString(got.TemplateContent.Subject))
	}
}

func TestServicesReuseAndMissingDeps(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	u, _ := url.Parse(env.DynamoDBEndpoint)
	port, _ := strconv.Atoi(u.Port())
	svc, err := localstack.StartDynamoDBLocal(ctx, localstack.DynamoDBOptions{Port: port, Reuse: true, DataDir: t.TempDir()})
	if err != nil || !svc.Reused || svc.Endpoint != env.DynamoDBEndpoint {
		t.Fatalf("reuse: %+v %v", svc, err)
	}
	if err := svc.Stop(); err != nil || !localstack.ProbeDynamoDB(ctx, env.DynamoDBEndpoint) {
		t.Errorf("stopping a reused service must leave it running: %v", err)
	}
	u, _ = url.Parse(env.SESEndpoint)
	port, _ = strconv.Atoi(u.Port())
	if svc, err := localstack.StartSES(ctx, localstack.SESOptions{Port: port, Reuse: true, DataDir: t.TempDir()}); err != nil || !svc.Reused {
		t.Errorf("ses reuse: %+v %v", svc, err)
	}
	if localstack.ProbeSES(ctx, env.DynamoDBEndpoint) || localstack.ProbeDynamoDB(ctx, env.SESEndpoint) {
		t.Error("probes confuse the services")
	}
	// DYNAMODB_ENDPOINT: someone else's DynamoDB, used once it answers, never stopped.
	if svc, err := localstack.UseDynamoDB(ctx, env.DynamoDBEndpoint+"/"); err != nil || !svc.Reused || svc.Endpoint != env.DynamoDBEndpoint {
		t.Errorf("use: %+v %v", svc, err)
	}
	for _, bad := range []string{env.SESEndpoint, "127.0.0.1:8000", "ftp://127.0.0.1:8000"} {
		if _, err := localstack.UseDynamoDB(ctx, bad); err == nil {
			t.Errorf("UseDynamoDB(%q) accepted something that is not DynamoDB", bad)
		}
	}

	_, err = localstack.StartDynamoDBLocal(ctx, localstack.DynamoDBOptions{LibDir: t.TempDir(), DataDir: t.TempDir()})
	if !localstack.IsMissingDeps(err) {
		t.Errorf("missing jar: %v", err)
	}
	_, err = localstack.StartSES(ctx, localstack.SESOptions{NodeModules: t.TempDir(), DataDir: t.TempDir()})
	if !localstack.IsMissingDeps(err) {
		t.Errorf("missing emulator: %v", err)
	}
}

func TestScheduler(t *testing.T) {
	env := testenv.Start(t)
	got := make(chan events.EventBridgeEvent, 10)
	lookup := func(_ context.Context, id string) (any, error) {
		return func(_ context.Context, raw json.RawMessage) error {
			var ev events.EventBridgeEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return err
			}
			got <- ev
			return nil
		}, nil
	}
	sched := localstack.NewScheduler(env.Template, localstack.NewInvoker(env.Template, lookup, nil),
		localstack.SchedulerOptions{FireOnStart: true})

	if _, err := sched.Fire(context.Background(), "ExpireInvitationsFunction"); err != nil {
		t.Fatal(err)
	}
	ev := <-got
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.Version != "0" || ev.ID == "" ||
		len(ev.Resources) != 1 || string(ev.Detail) != "{}" || time.Since(ev.Time) > time.Minute {
		t.Errorf("event %+v", ev)
	}
	if _, err := sched.Fire(context.Background(), "AdminFunction"); err == nil {
		t.Error("AdminFunction has no schedule")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sched.Run(ctx) }()
	select {
	case <-got: // FireOnStart
	case <-time.After(5 * time.Second):
		t.Error("FireOnStart did not fire")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func projectionOf(g types.GlobalSecondaryIndex) string {
	if g.Projection == nil {
		return ""
	}
	attrs := append([]string(nil), g.Projection.NonKeyAttributes...)
	sort.Strings(attrs)
	return string(g.Projection.ProjectionType) + fmt.Sprint(attrs)
}

// usedAttributes keeps the attribute definitions some key schema uses (CreateTable rejects others).
func usedAttributes(in *dynamodb.CreateTableInput) []types.AttributeDefinition {
	used := map[string]bool{}
	for _, k := range in.KeySchema {
		used[aws.ToString(k.AttributeName)] = true
	}
	for _, g := range in.GlobalSecondaryIndexes {
		for _, k := range g.KeySchema {
			used[aws.ToString(k.AttributeName)] = true
		}
	}
	var out []types.AttributeDefinition
	for _, a := range in.AttributeDefinitions {
		if used[aws.ToString(a.AttributeName)] {
			out = append(out, a)
		}
	}
	return out
}
