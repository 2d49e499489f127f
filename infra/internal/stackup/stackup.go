// Package stackup starts a throwaway local stack for the tools that drive the API over HTTP
// (infra/schemathesis, infra/load): DynamoDB Local (in memory) and the SES emulator on free
// ports, a fresh table and the mail templates from template.yaml, and the same API Gateway
// stand-in, stream runner and handlers that `go run ./infra/local run` serves, on
// 127.0.0.1 at a free (or chosen) port.
//
// Unlike `infra/local run` it keeps nothing on disk (no .local/data, no stream checkpoints),
// and under `go run ./infra/local testenv -- ...` it uses that command's services
// (ROLLCALL_TEST_DYNAMODB_ENDPOINT, ROLLCALL_TEST_SES_ENDPOINT) instead of starting its own.
package stackup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/auth"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
	"github.com/rollcall/rollcall/internal/testenv"
)

// Stage is the local stage (HS256 tokens with app.DefaultLocalJWTSecret unless JWT_SECRET is
// set, as `go run ./infra/local token` signs them).
const Stage = "local"

// Options shape a stack; the zero value is fine.
type Options struct {
	// Port for the API; 0 picks a free one.
	Port int
	// TablePrefix names the table (a random suffix is added); default "rollcall-stackup".
	TablePrefix string
	// NoStreams leaves the table's stream unread (no mail, no audit entries).
	NoStreams bool
	// Logger for the gateway's access lines and function errors; nil discards.
	Logger *slog.Logger
	// FunctionLogger for the functions' own logs; nil discards.
	FunctionLogger *slog.Logger
}

// Stack is a running local stack.
type Stack struct {
	URL              string // http://127.0.0.1:PORT
	DynamoDBEndpoint string
	SESEndpoint      string
	TableName        string
	JWTSecret        string

	services []*localstack.Service
	tmpDir   string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
}

// Start brings the stack up; Close tears down everything it started.
func Start(ctx context.Context, o Options) (st *Stack, err error) {
	tpl, err := samtemplate.LoadDefault()
	if err != nil {
		return nil, err
	}
	discard := slog.New(slog.DiscardHandler)
	if o.Logger == nil {
		o.Logger = discard
	}
	if o.FunctionLogger == nil {
		o.FunctionLogger = discard
	}
	if o.TablePrefix == "" {
		o.TablePrefix = "rollcall-stackup"
	}
	st = &Stack{
		DynamoDBEndpoint: os.Getenv(testenv.DynamoDBEndpointEnv),
		SESEndpoint:      os.Getenv(testenv.SESEndpointEnv),
		TableName:        o.TablePrefix + "-" + randomHex(4),
		JWTSecret:        envOr("JWT_SECRET", app.DefaultLocalJWTSecret),
		errs:             make(chan error, 4),
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()

	// Take the API port first, so a busy port fails before the JVM starts.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return nil, fmt.Errorf("API port: %w", err)
	}
	st.URL = "http://" + ln.Addr().String()

	if err := st.startServices(ctx); err != nil {
		ln.Close()
		return nil, err
	}
	if err := localstack.EnsureResources(ctx, tpl, st.DynamoDBEndpoint, st.SESEndpoint, st.TableName, Stage); err != nil {
		ln.Close()
		return nil, err
	}

	cfg := app.Config{
		Stage: Stage, TableName: st.TableName, Region: localstack.Region,
		DynamoDBEndpoint: st.DynamoDBEndpoint, SESEndpoint: st.SESEndpoint,
		JWTSecret: st.JWTSecret, SigningSecret: "stackup-signing-secret-0123456789abcdef",
		PublicBaseURL: st.URL, MailFrom: "no-reply@rollcall.local", MailTemplatePrefix: "rollcall-" + Stage + "-",
		MailSendRate: 1000, Logger: o.FunctionLogger,
	}
	// Each function runs with its own IAM policy from the template, as in AWS.
	roles, err := localiam.FromTemplate(tpl, localiam.LocalValues(cfg.Stage, cfg.TableName, cfg.MailFrom))
	if err != nil {
		ln.Close()
		return nil, err
	}
	ls, err := localstack.Assemble(ctx, localstack.StackOptions{
		Template: tpl,
		Lookup: func(ctx context.Context, id string) (any, error) {
			c := cfg
			c.Authorize = roles.Middleware(id)
			return functions.Handler(ctx, id, c)
		},
		DynamoDBEndpoint: st.DynamoDBEndpoint, TableName: st.TableName,
		Streams: !o.NoStreams, // no CheckpointDir: positions in memory
		Logger:  o.Logger,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	for id, e := range ls.Unavailable {
		o.Logger.Warn("function unavailable; its routes answer 502", "function", id, "err", e)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	for _, run := range []func(context.Context) error{ls.Run, func(ctx context.Context) error { return ls.Serve(ctx, ln) }} {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			if err := run(runCtx); err != nil {
				st.errs <- err
			}
		}()
	}
	return st, nil
}

func (st *Stack) startServices(ctx context.Context) error {
	if st.DynamoDBEndpoint != "" && st.SESEndpoint != "" {
		return nil
	}
	dir, err := os.MkdirTemp("", "rollcall-stackup-")
	if err != nil {
		return err
	}
	st.tmpDir = dir
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	eph, err := localstack.StartEphemeral(sctx, dir, st.DynamoDBEndpoint == "", st.SESEndpoint == "")
	if err != nil {
		return fmt.Errorf("%w (make deps installs DynamoDB Local and the SES emulator)", err)
	}
	st.services = append(st.services, eph.Services()...)
	if eph.DynamoDB != nil {
		st.DynamoDBEndpoint = eph.DynamoDB.Endpoint
	}
	if eph.SES != nil {
		st.SESEndpoint = eph.SES.Endpoint
	}
	return nil
}

// Token is a local bearer token, like `go run ./infra/local token USERNAME [--admin]`.
func (st *Stack) Token(username string, staff bool) (string, error) {
	return auth.IssueLocal([]byte(st.JWTSecret), username, username+"@example.com", staff, 24*time.Hour)
}

// Err reports a background failure (the API server or the stream runner), if any.
func (st *Stack) Err() <-chan error { return st.errs }

// Close stops the server, the stream runner and the services this stack started.
func (st *Stack) Close() {
	if st.cancel != nil {
		st.cancel()
	}
	st.wg.Wait()
	for _, s := range st.services {
		_ = s.Stop()
	}
	st.services = nil
	if st.tmpDir != "" {
		_ = os.RemoveAll(st.tmpDir)
		st.tmpDir = ""
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
