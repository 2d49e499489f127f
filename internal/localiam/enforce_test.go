package localiam_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// repoTemplate returns template.yaml's text.
func repoTemplate(t *testing.T) string {
	t.Helper()
	p, err := samtemplate.Find()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutGrant removes the first line matching line (trimmed) from function's resource in the
// template's text: one grant fewer.
func withoutGrant(t *testing.T, src, function, line string) string {
	t.Helper()
	start := strings.Index(src, "\n  "+function+":\n")
	if start < 0 {
		t.Fatalf("no %s in the template", function)
	}
	end := len(src)
	if loc := regexp.MustCompile(`\n  [A-Za-z]`).FindStringIndex(src[start+1:]); loc != nil {
		end = start + 1 + loc[0]
	}
	lines := strings.Split(src[start:end], "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == line {
			lines = append(lines[:i], lines[i+1:]...)
			return src[:start] + strings.Join(lines, "\n") + src[end:]
		}
	}
	t.Fatalf("%s has no line %q", function, line)
	return ""
}

// functionDeps builds a function's dependencies the way the local stack does, with the
// function's policy from the template text tplSrc, against DynamoDB Local.
func functionDeps(t *testing.T, tplSrc, function, table string) *app.Deps {
	t.Helper()
	env := testenv.Start(t)
	tpl, err := samtemplate.Parse([]byte(tplSrc))
	if err != nil {
		t.Fatal(err)
	}
	roles, err := localiam.FromTemplate(tpl, localiam.LocalValues("local", table, "no-reply@rollcall.test"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := app.Build(context.Background(), app.Config{
		Stage: "local", TableName: table, Region: localstack.Region, DynamoDBEndpoint: env.DynamoDBEndpoint,
		JWTSecret: app.DefaultLocalJWTSecret, SigningSecret: "localiam-test-signing-secret-0123",
		Authorize: roles.Middleware(function),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A Query on an index the policy does not grant fails with AccessDeniedException through the
// real SDK, and never reaches DynamoDB Local; with the grant it runs.
func TestIndexGrantEnforced(t *testing.T) {
	_, table := testenv.NewTable(t, localstack.WithoutStream())
	src := repoTemplate(t)
	query := func(d *app.Deps, index string) error {
		_, err := d.DynamoDB.Query(context.Background(), &dynamodb.QueryInput{
			TableName: aws.String(table), IndexName: aws.String(index),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": index + "PK"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "x"}},
		})
		return err
	}

	granted := functionDeps(t, src, "ListEnrollmentsFunction", table)
	if err := query(granted, "GSI1"); err != nil {
		t.Fatalf("granted index: %v", err)
	}
	if err := query(granted, "GSI3"); !localiam.IsAccessDenied(err) {
		t.Fatalf("GSI3 is not granted to ListEnrollmentsFunction: want AccessDenied, got %v", err)
	}

	revoked := functionDeps(t, withoutGrant(t, src, "ListEnrollmentsFunction", "- !Sub '${Table.Arn}/index/GSI1'"), "ListEnrollmentsFunction", table)
	err := query(revoked, "GSI1")
	if !localiam.IsAccessDenied(err) {
		t.Fatalf("GSI1 revoked: want AccessDenied, got %v", err)
	}
	for _, want := range []string{"ListEnrollmentsFunction", "dynamodb:Query", "table/" + table + "/index/GSI1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not name %s", err, want)
		}
	}
	if err := query(revoked, "GSI2"); err != nil {
		t.Fatalf("GSI2 still granted: %v", err)
	}
}

// A transaction whose ConditionCheck step the policy does not allow (no
// dynamodb:ConditionCheckItem) is refused as a whole, although PutItem is granted.
func TestTransactionStepGrantEnforced(t *testing.T) {
	db, table := testenv.NewTable(t, localstack.WithoutStream())
	src := repoTemplate(t)
	key := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: "x"}}
	}
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: key("guard")}); err != nil {
		t.Fatal(err)
	}
	transact := func(d *app.Deps, pk string) error {
		_, err := d.DynamoDB.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(table), Item: key(pk)}},
			{ConditionCheck: &types.ConditionCheck{TableName: aws.String(table), Key: key("guard"), ConditionExpression: aws.String("attribute_exists(PK)")}},
		}})
		return err
	}
	exists := func(pk string) bool {
		out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item != nil
	}

	if err := transact(functionDeps(t, src, "AdminFunction", table), "granted"); err != nil || !exists("granted") {
		t.Fatalf("AdminFunction may ConditionCheckItem: %v", err)
	}
	revoked := functionDeps(t, withoutGrant(t, src, "AdminFunction", "- dynamodb:ConditionCheckItem"), "AdminFunction", table)
	err := transact(revoked, "revoked")
	if !localiam.IsAccessDenied(err) || !strings.Contains(err.Error(), "dynamodb:ConditionCheckItem") {
		t.Fatalf("want AccessDenied on dynamodb:ConditionCheckItem, got %v", err)
	}
	if exists("revoked") {
		t.Fatal("the refused transaction wrote its Put")
	}
	// A function with no grant on the table at all (AuditFunction may only BatchWriteItem).
	if _, err := functionDeps(t, src, "AuditFunction", table).DynamoDB.GetItem(context.Background(),
		&dynamodb.GetItemInput{TableName: aws.String(table), Key: key("guard")}); !localiam.IsAccessDenied(err) {
		t.Fatalf("AuditFunction GetItem: want AccessDenied, got %v", err)
	}
}
