package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/localiam"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// The local stage; its mail templates are rollcall-local-*.
const stage = "local"

// Same default as app.ConfigFromEnv for the local stage, so the token the runner prints and
// the functions agree even when the runner is the one setting the environment.

// stackConfig is what run and invoke share: where things live and which ports they use.
type stackConfig struct {
	root      string
	tpl       *samtemplate.Template
	tableName string
	ddbPort   int
	// ddbEndpoint (DYNAMODB_ENDPOINT) is a DynamoDB someone else runs, used instead of
	// starting DynamoDB Local.
	ddbEndpoint string
	sesPort     int
	sqsPort     int
	s3Port      int
	apiPort     int
	dataDir     string // .local/data: dynamodb/ (database + log), ses/ (log), streams/ (checkpoints)
	log         *slog.Logger
}

func loadStackConfig(log *slog.Logger) (*stackConfig, error) {
	tplPath, err := samtemplate.Find()
	if err != nil {
		return nil, err
	}
	tpl, err := samtemplate.Load(tplPath)
	if err != nil {
		return nil, err
	}
	c := &stackConfig{root: filepath.Dir(tplPath), tpl: tpl, log: log}
	c.dataDir = filepath.Join(c.root, ".local", "data")
	c.tableName = envOr("TABLE_NAME", "rollcall-local")
	c.ddbEndpoint = envOr("DYNAMODB_ENDPOINT", "")
	for _, p := range []struct {
		env string
		def int
		dst *int
	}{{"DYNAMODB_PORT", 8000, &c.ddbPort}, {"SES_PORT", 8005, &c.sesPort},
		{"SQS_PORT", 9324, &c.sqsPort}, {"S3_PORT", 4569, &c.s3Port}, {"PORT", 3000, &c.apiPort}} {
		v := envOr(p.env, strconv.Itoa(p.def))
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("%s=%q is not a port", p.env, v)
		}
		*p.dst = n
	}
	return c, nil
}

// stack is the running (or reused) services with the table and mail templates in place.
type stack struct {
	*stackConfig
	ddb, ses *localstack.Service
	sqs, s3  *localstack.Service
	// queueURLs and buckets by logical id (the template's job queues and uploads bucket).
	queueURLs map[string]string
	buckets   map[string]string
}

// startStack starts DynamoDB Local (persisted under .local/data/dynamodb) and the emulator, or
// reuses them when their ports already answer (or DynamoDB at DYNAMODB_ENDPOINT, if set), then
// creates the table and the mail templates.
func startStack(ctx context.Context, c *stackConfig) (*stack, error) {
	s := &stack{stackConfig: c}
	var wg sync.WaitGroup
	var ddbErr, sesErr, sqsErr, s3Err error
	wg.Add(4)
	go func() {
		defer wg.Done()
		if c.ddbEndpoint != "" {
			s.ddb, ddbErr = localstack.UseDynamoDB(ctx, c.ddbEndpoint)
			return
		}
		s.ddb, ddbErr = localstack.StartDynamoDBLocal(ctx, localstack.DynamoDBOptions{
			Port: c.ddbPort, DataDir: filepath.Join(c.dataDir, "dynamodb"), Reuse: true,
		})
	}()
	go func() {
		defer wg.Done()
		s.ses, sesErr = localstack.StartSES(ctx, localstack.SESOptions{
			Port: c.sesPort, DataDir: filepath.Join(c.dataDir, "ses"), Reuse: true,
		})
	}()
	go func() {
		defer wg.Done()
		s.sqs, sqsErr = localstack.StartElasticMQ(ctx, localstack.ElasticMQOptions{
			Port: c.sqsPort, DataDir: filepath.Join(c.dataDir, "elasticmq"), Reuse: true,
		})
	}()
	go func() {
		defer wg.Done()
		s.s3, s3Err = localstack.StartS3(ctx, localstack.S3Options{
			Port: c.s3Port, DataDir: filepath.Join(c.dataDir, "s3"), Reuse: true,
		})
	}()
	wg.Wait()
	if err := errors.Join(ddbErr, sesErr, sqsErr, s3Err); err != nil {
		s.stop()
		return nil, err
	}
	for _, svc := range []*localstack.Service{s.ddb, s.ses, s.sqs, s.s3} {
		if svc.Reused {
			c.log.Info("reusing a running service", "service", svc.Name, "endpoint", svc.Endpoint)
		} else {
			c.log.Info("started", "service", svc.Name, "endpoint", svc.Endpoint, "log", svc.LogFile)
		}
	}
	if err := localstack.EnsureResources(ctx, c.tpl, s.ddb.Endpoint, s.ses.Endpoint, c.tableName, stage); err != nil {
		s.stop()
		return nil, err
	}
	var err error
	if s.queueURLs, err = localstack.EnsureQueues(ctx, localstack.NewSQSClient(s.sqs.Endpoint), c.tpl, c.tableName); err != nil {
		s.stop()
		return nil, fmt.Errorf("queues: %w", err)
	}
	if s.buckets, err = localstack.EnsureBuckets(ctx, localstack.NewS3Client(s.s3.Endpoint), c.tpl, c.tableName); err != nil {
		s.stop()
		return nil, fmt.Errorf("buckets: %w", err)
	}
	return s, nil
}

// stop stops the services this process started (reused ones keep running).
func (s *stack) stop() {
	for _, svc := range []*localstack.Service{s.s3, s.sqs, s.ses, s.ddb} {
		if svc != nil && !svc.Reused {
			if err := svc.Stop(); err != nil {
				s.log.Error("stop", "service", svc.Name, "err", err)
			}
		}
	}
}

// setEnv gives the functions the environment template.yaml gives them in AWS, evaluated for
// the local stage, plus the local endpoints. Variables the user set win, except the ones
// that must point at this stack.
func (s *stack) setEnv(publicURL string) (app.Config, error) {
	values := map[string]string{
		"Stage":         stage,
		"Table":         s.tableName,
		"PublicBaseUrl": envOr("PUBLIC_BASE_URL", publicURL),
		"MailFrom":      envOr("MAIL_FROM", "no-reply@rollcall.local"),
	}
	for id, url := range s.queueURLs {
		values[id] = url
	}
	for id, name := range s.buckets {
		values[id] = name
	}
	env := map[string]string{}
	for _, fn := range s.tpl.Functions() {
		fe, _, err := s.tpl.FunctionEnv(fn, values) // unresolved: the JWKS settings, unused locally
		if err != nil {
			return app.Config{}, err
		}
		for k, v := range fe {
			if prev, ok := env[k]; ok && prev != v {
				s.log.Warn("functions disagree on an environment variable; the local stack shares one environment",
					"var", k, "values", []string{prev, v})
			}
			env[k] = v
		}
	}
	forced := map[string]string{
		"STAGE":                stage,
		"TABLE_NAME":           s.tableName,
		"DYNAMODB_ENDPOINT":    s.ddb.Endpoint,
		"SES_ENDPOINT":         s.ses.Endpoint,
		"SQS_ENDPOINT":         s.sqs.Endpoint,
		"S3_ENDPOINT":          s.s3.Endpoint,
		"MAIL_TEMPLATE_PREFIX": "rollcall-" + stage + "-",
		"AWS_REGION":           localstack.Region,
	}
	for k, v := range map[string]string{
		"JWT_SECRET": app.DefaultLocalJWTSecret,
		// Keeps the SDK from looking for an account (and the EC2 metadata service) if some
		// client is built without the static local credentials.
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, forcedVar := forced[k]; forcedVar {
			continue
		}
		if _, set := os.LookupEnv(k); !set {
			os.Setenv(k, env[k])
		}
	}
	for k, v := range forced {
		os.Setenv(k, v)
	}
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		return cfg, fmt.Errorf("function configuration: %w", err)
	}
	return cfg, nil
}

// ensureDemo makes sure the demo course and user that the sample events in events/ name exist
// (idempotent: what exists is left alone).
func ensureDemo(ctx context.Context, cfg app.Config, log *slog.Logger) error {
	deps, err := app.Build(ctx, cfg)
	if err == nil {
		err = deps.EnsureDemo(ctx)
	}
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	log.Info("demo data ready", "course", app.DemoCourseID, "user", app.DemoUsername)
	return nil
}

// lookup binds functions.Handler to a configuration for the localstack pieces. Each function runs
// with its own IAM policy from the template (localiam): a call its role would not be allowed
// in AWS fails here too.
func lookup(tpl *samtemplate.Template, cfg app.Config) (localstack.HandlerLookup, error) {
	iamValues := localiam.LocalValues(cfg.Stage, cfg.TableName, cfg.MailFrom)
	maps.Copy(iamValues, cfg.Jobs.IAMValues())
	roles, err := localiam.FromTemplate(tpl, iamValues)
	if err != nil {
		return nil, fmt.Errorf("function policies: %w", err)
	}
	return func(ctx context.Context, logicalID string) (any, error) {
		c := cfg
		c.Authorize = roles.Middleware(logicalID)
		return functions.Handler(ctx, logicalID, c)
	}, nil
}

func envOr(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}

// newLogger is the runner's own text logger, also made the default so library lines (index
// rebuilds in localstack.EnsureTable) look the same.
func newLogger() *slog.Logger {
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(l)
	return l
}
