package testenv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestNewTable(t *testing.T) {
	db, table := testenv.NewTable(t)
	ctx := context.Background()
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != types.TableStatusActive || len(out.Table.GlobalSecondaryIndexes) != 6 ||
		out.Table.LatestStreamArn == nil {
		t.Errorf("table %+v", out.Table)
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "ttl" {
		t.Errorf("ttl %+v", ttl.TimeToLiveDescription)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "a"}, "SK": &types.AttributeValueMemberS{Value: "b"},
	}})
	if err != nil {
		t.Fatal(err)
	}

	_, other := testenv.NewTable(t, localstack.WithoutStream())
	if other == table {
		t.Error("table names repeat")
	}
	out, err = db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &other})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.LatestStreamArn != nil || len(out.Table.GlobalSecondaryIndexes) != 6 {
		t.Errorf("table without stream %+v", out.Table)
	}
}

func TestTemplatedMail(t *testing.T) {
	ses := testenv.SES(t)
	to := testenv.Address("alice")
	_, err := ses.SendBulkEmail(context.Background(), &sesv2.SendBulkEmailInput{
		FromEmailAddress: aws.String("no-reply@rollcall.local"),
		DefaultContent: &sestypes.BulkEmailContent{Template: &sestypes.Template{
			TemplateName: aws.String(testenv.MailTemplatePrefix + "enrolled"),
			TemplateData: aws.String(`{"name":"Alice","course_title":"Intro","course_id":"course-v1:A+B+C","name_html":"Alice","course_title_html":"Intro","course_id_html":"course-v1:A+B+C"}`),
		}},
		BulkEmailEntries: []sestypes.BulkEmailEntry{{Destination: &sestypes.Destination{ToAddresses: []string{to}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := testenv.WaitForEmails(t, strings.ToUpper(to), 1, 5*time.Second)
	if got[0].Subject != "You have been enrolled in Intro" || !strings.Contains(got[0].Body.Text, "Dear Alice") ||
		got[0].From != "no-reply@rollcall.local" {
		t.Errorf("mail %+v", got[0])
	}
	if len(testenv.Emails(t, "nobody@example.com")) != 0 {
		t.Error("recipient filter")
	}

	// Clearing hides what the store holds now but keeps the templates usable. The emulator is
	// shared with the other test binaries of make test, which may send mail at any moment, so
	// this checks our own recipient rather than the whole store.
	testenv.ClearEmails(t)
	if n := len(testenv.Emails(t, to)); n != 0 {
		t.Errorf("%d mails to %s after clear", n, to)
	}
	if _, err := ses.GetEmailTemplate(context.Background(), &sesv2.GetEmailTemplateInput{
		TemplateName: aws.String(testenv.MailTemplatePrefix + "invited"),
	}); err != nil {
		t.Errorf("templates gone after clear: %v", err)
	}
	// Mail sent after the clear is seen again.
	if _, err := ses.SendBulkEmail(context.Background(), &sesv2.SendBulkEmailInput{
		FromEmailAddress: aws.String("no-reply@rollcall.local"),
		DefaultContent: &sestypes.BulkEmailContent{Template: &sestypes.Template{
			TemplateName: aws.String(testenv.MailTemplatePrefix + "enrolled"),
			TemplateData: aws.String(`{"name":"Bob","course_title":"Intro","course_id":"c","name_html":"Bob","course_title_html":"Intro","course_id_html":"c"}`),
		}},
		BulkEmailEntries: []sestypes.BulkEmailEntry{{Destination: &sestypes.Destination{ToAddresses: []string{to}}}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := testenv.WaitForEmails(t, to, 1, 5*time.Second); len(got) != 1 || !strings.Contains(got[0].Body.Text, "Dear Bob") {
		t.Errorf("after clear: %+v", got)
	}
}
