// Package testenv gives integration tests real DynamoDB Local and SES emulator endpoints.
//
// If ROLLCALL_TEST_DYNAMODB_ENDPOINT / ROLLCALL_TEST_SES_ENDPOINT are set, those services are
// used (make test may start one pair for every package). Otherwise the first Start in a test
// binary starts both on free ports (DynamoDB in memory), and they stop when the binary exits:
// explicitly when the package uses Main as its TestMain, else by the kernel (the children get
// PDEATHSIG). Under -short every integration test is skipped; otherwise a missing DynamoDB Local
// or emulator fails the test with a hint to run `make deps`.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		db, table := testenv.NewTable(t)
//		...
//	}
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/ses"
)

// Environment variables naming already-running services.
const (
	DynamoDBEndpointEnv = "ROLLCALL_TEST_DYNAMODB_ENDPOINT"
	SESEndpointEnv      = "ROLLCALL_TEST_SES_ENDPOINT"
)

// Stage names the mail templates testenv creates in the emulator: a Config for tests should
// use MailTemplatePrefix.
const (
	Stage              = "local"
	MailTemplatePrefix = "rollcall-" + Stage + "-"
)

// Env is the running test environment.
type Env struct {
	DynamoDBEndpoint string
	SESEndpoint      string
	Template         *samtemplate.Template
}

var (
	once     sync.Once
	env      *Env
	startErr error
	started  []*localstack.Service
	logDir   string
)

// Main runs the package's tests and then stops the services testenv started. Use it as
// TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the services this binary started (Main calls it). Later Starts fail.
func Stop() {
	once.Do(func() { startErr = fmt.Errorf("testenv: stopped") })
	stopServices()
}

func stopServices() {
	for _, s := range started {
		_ = s.Stop()
	}
	started = nil
	if logDir != "" {
		_ = os.RemoveAll(logDir)
		logDir = ""
	}
}

// Start returns the environment, starting the services on first use. It skips the test under
// -short and fails it if the services cannot run.
func Start(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	once.Do(func() { env, startErr = start() })
	if startErr != nil {
		t.Fatalf("testenv: %v", startErr)
	}
	return env
}

func start() (*Env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tpl, err := samtemplate.LoadDefault()
	if err != nil {
		return nil, err
	}
	e := &Env{
		DynamoDBEndpoint: os.Getenv(DynamoDBEndpointEnv),
		SESEndpoint:      os.Getenv(SESEndpointEnv),
		Template:         tpl,
	}
	if e.DynamoDBEndpoint == "" || e.SESEndpoint == "" {
		if logDir, err = os.MkdirTemp("", "rollcall-testenv-"); err != nil {
			return nil, err
		}
	}
	eph, err := localstack.StartEphemeral(ctx, logDir, e.DynamoDBEndpoint == "", e.SESEndpoint == "")
	if err != nil {
		return nil, err
	}
	started = append(started, eph.Services()...)
	if eph.DynamoDB != nil {
		e.DynamoDBEndpoint = eph.DynamoDB.Endpoint
	}
	if eph.SES != nil {
		e.SESEndpoint = eph.SES.Endpoint
	}
	if err := localstack.EnsureEmailTemplates(ctx, localstack.NewSESClient(e.SESEndpoint), tpl, Stage); err != nil {
		stopServices()
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	return e, nil
}

// DynamoDB returns a client for the environment's DynamoDB Local.
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	return localstack.NewDynamoDBClient(Start(t).DynamoDBEndpoint)
}

// Streams returns a DynamoDB Streams client for the environment's DynamoDB Local.
func Streams(t testing.TB) *dynamodbstreams.Client {
	t.Helper()
	return localstack.NewStreamsClient(Start(t).DynamoDBEndpoint)
}

// SESClient returns the mail functions' own SES client (internal/ses) for the emulator.
func SESClient(t testing.TB) *ses.Client {
	t.Helper()
	return ses.NewClient(localstack.AWSConfig(), Start(t).SESEndpoint, nil)
}

// SES returns an SES v2 client for the emulator, whose templates are named MailTemplatePrefix*.
func SES(t testing.TB) *sesv2.Client {
	t.Helper()
	return localstack.NewSESClient(Start(t).SESEndpoint)
}

// NewTable creates a uniquely named table from template.yaml (deleted when the test ends) and
// returns a client and its name. Tests that do not read the table's stream should pass
// localstack.WithoutStream(): the services are shared by every test binary of make test, and
// DynamoDB Local slows down with every stream record it holds (see WithoutStream).
func NewTable(t testing.TB, opts ...localstack.TableOption) (*dynamodb.Client, string) {
	t.Helper()
	e := Start(t)
	client := localstack.NewDynamoDBClient(e.DynamoDBEndpoint)
	name := "rollcall-test-" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := localstack.EnsureTable(ctx, client, e.Template, name, opts...); err != nil {
		t.Fatalf("testenv: create table: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &name})
	})
	return client, name
}

// Address returns a unique email address (local+random@example.com), so a test can find its own
// mail in the shared emulator with Emails.
func Address(local string) string {
	return local + "+" + randomHex(5) + "@example.com"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
