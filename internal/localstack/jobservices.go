package localstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// ElasticMQOptions configures StartElasticMQ.
type ElasticMQOptions struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// DataDir receives elasticmq.conf and elasticmq.log (queues live in memory; the local
	// stack creates them from the template at every start).
	DataDir string
	// LibDir holds elasticmq-server and its dependencies; default <repo>/.local/elasticmq/lib
	// (where `make deps` puts them).
	LibDir string
	// Java is the java binary; default $JAVA_HOME/bin/java if set, else java from PATH.
	Java string
	// Reuse a server that already answers as SQS on Port instead of failing.
	Reuse        bool
	StartTimeout time.Duration // default 120 s (a JVM on a busy 2-core machine)
}

// StartElasticMQ starts ElasticMQ (an SQS-compatible server from Maven Central) and waits until
// it answers SQS's ListQueues.
func StartElasticMQ(ctx context.Context, opts ElasticMQOptions) (*Service, error) {
	if opts.Reuse && opts.Port != 0 && ProbeSQS(ctx, endpoint(opts.Port)) {
		return &Service{Name: "elasticmq", Endpoint: endpoint(opts.Port), Port: opts.Port, Reused: true}, nil
	}
	if portInUse(opts.Port) {
		return nil, fmt.Errorf("port %d is in use by something that is not ElasticMQ; choose another port (SQS_PORT)", opts.Port)
	}
	lib := opts.LibDir
	if lib == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		lib = filepath.Join(root, ".local", "elasticmq", "lib")
	}
	if jars, _ := filepath.Glob(filepath.Join(lib, "elasticmq-server_*.jar")); len(jars) == 0 {
		return nil, &MissingDepsError{What: "ElasticMQ is not installed (no elasticmq-server_*.jar in " + lib + ")"}
	}
	java, err := javaRuntime(opts.Java, "ElasticMQ")
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, errors.New("localstack: ElasticMQOptions.DataDir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	// sqs-limits strict: message size, batch sizes and attribute values are checked as SQS
	// checks them, so what works locally is not refused on AWS.
	conf := fmt.Sprintf(`include classpath("application.conf")
node-address { protocol = http, host = 127.0.0.1, port = %d, context-path = "" }
rest-sqs { enabled = true, bind-port = %d, bind-hostname = "127.0.0.1", sqs-limits = strict }
rest-stats { enabled = false }
`, port, port)
	confPath := filepath.Join(opts.DataDir, fmt.Sprintf("elasticmq-%d.conf", port))
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	absLib, err := filepath.Abs(lib)
	if err != nil {
		return nil, err
	}
	argv := []string{java, "-Xss1m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dconfig.file=" + confPath, "-cp", filepath.Join(absLib, "*"), "org.elasticmq.server.Main"}
	logPath := filepath.Join(opts.DataDir, "elasticmq.log")
	return launch(ctx, launchSpec{name: "elasticmq", title: "ElasticMQ", logPath: logPath, argv: argv, env: childEnv(),
		port: port, timeout: opts.StartTimeout, defaultTimeout: 120 * time.Second, probe: ProbeSQS})
}

// ProbeSQS reports whether endpoint answers SQS's ListQueues.
func ProbeSQS(ctx context.Context, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := NewSQSClient(endpoint).ListQueues(ctx, &sqs.ListQueuesInput{}, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	return err == nil
}

// S3Options configures StartS3.
type S3Options struct {
	Port    int    // 0 picks a free one
	DataDir string // receives s3-local.log
	// Binary is the s3-local command (infra/s3-local); default <repo>/.local/bin/s3-local,
	// built with `go build` when missing.
	Binary       string
	Reuse        bool
	StartTimeout time.Duration // default 60 s (a first build included)
}

// StartS3 starts the local S3 (gofakes3, infra/s3-local) and waits until it answers.
func StartS3(ctx context.Context, opts S3Options) (*Service, error) {
	if opts.Reuse && opts.Port != 0 && ProbeS3(ctx, endpoint(opts.Port)) {
		return &Service{Name: "s3-local", Endpoint: endpoint(opts.Port), Port: opts.Port, Reused: true}, nil
	}
	if portInUse(opts.Port) {
		return nil, fmt.Errorf("port %d is in use by something that is not the S3 emulator; choose another port (S3_PORT)", opts.Port)
	}
	if opts.DataDir == "" {
		return nil, errors.New("localstack: S3Options.DataDir is required")
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = EnsureS3Binary(ctx); err != nil {
			return nil, err
		}
	}
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(opts.DataDir, "s3-local.log")
	return launch(ctx, launchSpec{name: "s3-local", title: "S3 emulator", logPath: logPath, argv: []string{bin, "-port", strconv.Itoa(port)}, env: childEnv(),
		port: port, timeout: opts.StartTimeout, defaultTimeout: 60 * time.Second, probe: ProbeS3})
}

var s3BuildMu sync.Mutex

// EnsureS3Binary builds infra/s3-local into <repo>/.local/bin/s3-local unless it is there.
func EnsureS3Binary(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".local", "bin", "s3-local")
	s3BuildMu.Lock()
	defer s3BuildMu.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin := "go"
	if r := os.Getenv("GOROOT"); r != "" {
		goBin = filepath.Join(r, "bin", "go")
	}
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, "./infra/s3-local")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &MissingDepsError{What: fmt.Sprintf("the S3 emulator could not be built (%v): %s", err, out)}
	}
	return bin, os.Rename(tmp, bin)
}

// ProbeS3 reports whether endpoint answers S3's ListBuckets.
func ProbeS3(ctx context.Context, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != ""
}

// NewSQSClient returns an SQS client for a local endpoint (ElasticMQ).
func NewSQSClient(endpoint string) *sqs.Client {
	return sqs.NewFromConfig(AWSConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// NewS3Client returns an S3 client for the local S3 (path-style addressing).
func NewS3Client(endpoint string) *s3.Client {
	return s3.NewFromConfig(AWSConfig(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// QueueOption changes how EnsureQueues creates queues.
type QueueOption func(*samtemplate.QueueSpec)

// WithVisibilityTimeout overrides every queue's visibility timeout (tests of redelivery, which
// cannot wait the template's minutes).
func WithVisibilityTimeout(d time.Duration) QueueOption {
	return func(q *samtemplate.QueueSpec) { q.VisibilityTimeout = d }
}

// EnsureQueues creates the template's queues, named <prefix>-<LogicalId>, with their
// visibility timeout, retention and redrive policy, and returns their URLs by logical id.
func EnsureQueues(ctx context.Context, client *sqs.Client, tpl *samtemplate.Template, prefix string, opts ...QueueOption) (map[string]string, error) {
	specs, err := tpl.Queues()
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	arns := map[string]string{}
	for _, q := range specs {
		for _, o := range opts {
			o(&q)
		}
		attrs := map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(q.VisibilityTimeout / time.Second)),
			string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(q.MessageRetention / time.Second)),
		}
		if q.DeadLetterQueue != "" {
			arn := arns[q.DeadLetterQueue]
			if arn == "" {
				return nil, fmt.Errorf("queue %s: dead-letter queue %s was not created first", q.LogicalID, q.DeadLetterQueue)
			}
			attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, arn, q.MaxReceiveCount)
		}
		name := prefix + "-" + q.LogicalID
		out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			// An existing queue with other attributes (an older template): bring it up to date.
			got, gerr := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
			if gerr != nil {
				return nil, fmt.Errorf("create queue %s: %w", name, err)
			}
			if _, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: got.QueueUrl, Attributes: attrs}); err != nil {
				return nil, fmt.Errorf("update queue %s: %w", name, err)
			}
			out = &sqs.CreateQueueOutput{QueueUrl: got.QueueUrl}
		}
		urls[q.LogicalID] = aws.ToString(out.QueueUrl)
		a, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", name, err)
		}
		arns[q.LogicalID] = a.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	}
	return urls, nil
}

// EnsureBuckets creates the template's buckets, named <prefix>-<logicalid> in lower case, and
// returns their names by logical id. (The emulator does not run lifecycle rules: uploads stay
// until the process ends.)
func EnsureBuckets(ctx context.Context, client *s3.Client, tpl *samtemplate.Template, prefix string) (map[string]string, error) {
	specs, err := tpl.Buckets()
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, b := range specs {
		name := bucketName(prefix + "-" + b.LogicalID)
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			if _, herr := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)}); herr != nil {
				return nil, fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		names[b.LogicalID] = name
	}
	return names, nil
}

// bucketName lowers a name and keeps S3's characters (a-z, 0-9, '-', '.'), at most 63.
func bucketName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
			b = append(b, c)
		default:
			b = append(b, '-')
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}
