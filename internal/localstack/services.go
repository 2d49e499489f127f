package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DynamoDBOptions configures StartDynamoDBLocal.
type DynamoDBOptions struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// DataDir receives dynamodb-local.log and, unless InMemory, the database (-dbPath).
	DataDir  string
	InMemory bool
	// LibDir holds DynamoDBLocal.jar, its dependencies and the sqlite4java natives;
	// default <repo>/.local/dynamodb/lib (where `make deps` puts them).
	LibDir string
	// Java is the java binary; default $JAVA_HOME/bin/java if set, else java from PATH.
	Java string
	// Reuse an instance that already answers as DynamoDB on Port instead of failing.
	Reuse bool
	// StartTimeout bounds the wait for the first answer; default 60 s.
	StartTimeout time.Duration
}

// StartDynamoDBLocal starts DynamoDB Local (the official jar) and waits until it answers.
func StartDynamoDBLocal(ctx context.Context, opts DynamoDBOptions) (*Service, error) {
	if opts.Reuse && opts.Port != 0 && ProbeDynamoDB(ctx, endpoint(opts.Port)) {
		return &Service{Name: "dynamodb-local", Endpoint: endpoint(opts.Port), Port: opts.Port, Reused: true}, nil
	}
	if portInUse(opts.Port) {
		return nil, fmt.Errorf("port %d is in use by something that is not DynamoDB Local; choose another port (DYNAMODB_PORT)", opts.Port)
	}
	lib, err := dynamoLibDir(opts.LibDir)
	if err != nil {
		return nil, err
	}
	java, err := javaRuntime(opts.Java, "DynamoDB Local")
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("localstack: DynamoDBOptions.DataDir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	argv := []string{java,
		"-Djava.library.path=" + lib,
		"-cp", filepath.Join(lib, "*"),
		"com.amazonaws.services.dynamodbv2.local.main.ServerRunner",
		"-port", strconv.Itoa(port),
		// One database for every credential/region pair, so the AWS CLI or a GUI with other
		// credentials sees the same tables as the stack.
		"-sharedDb",
		"-disableTelemetry",
	}
	if opts.InMemory {
		argv = append(argv, "-inMemory")
	} else {
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, err
		}
		argv = append(argv, "-dbPath", abs)
	}
	logPath := filepath.Join(opts.DataDir, "dynamodb-local.log")
	return launch(ctx, launchSpec{name: "dynamodb-local", title: "DynamoDB Local", logPath: logPath, argv: argv, env: childEnv(),
		port: port, timeout: opts.StartTimeout, defaultTimeout: 60 * time.Second, probe: ProbeDynamoDB})
}

// UseDynamoDB is a DynamoDB endpoint someone else runs (DYNAMODB_ENDPOINT: a DynamoDB-compatible
// emulator instead of DynamoDB Local), once it answers ListTables. It is never stopped.
func UseDynamoDB(ctx context.Context, endpoint string) (*Service, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("DYNAMODB_ENDPOINT=%q is not an http(s) URL", endpoint)
	}
	if !ProbeDynamoDB(ctx, endpoint) {
		return nil, fmt.Errorf("nothing answers as DynamoDB at DYNAMODB_ENDPOINT=%s", endpoint)
	}
	port, _ := strconv.Atoi(u.Port())
	return &Service{Name: "dynamodb", Endpoint: strings.TrimSuffix(endpoint, "/"), Port: port, Reused: true}, nil
}

// dynamoLibDir checks that DynamoDB Local and its natives are installed.
func dynamoLibDir(dir string) (string, error) {
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".local", "dynamodb", "lib")
	}
	jars, _ := filepath.Glob(filepath.Join(dir, "DynamoDBLocal*.jar"))
	if len(jars) == 0 {
		return "", &MissingDepsError{What: "DynamoDB Local is not installed (no DynamoDBLocal*.jar in " + dir + ")"}
	}
	natives := map[string]string{"linux": "libsqlite4java-linux-*", "darwin": "libsqlite4java-osx*"}[runtime.GOOS]
	if natives != "" {
		if so, _ := filepath.Glob(filepath.Join(dir, natives)); len(so) == 0 {
			return "", &MissingDepsError{What: "the sqlite4java natives of DynamoDB Local are missing from " + dir}
		}
	}
	return filepath.Abs(dir)
}

// portInUse reports whether something accepts connections on 127.0.0.1:port (0: no port yet).
func portInUse(port int) bool {
	if port == 0 {
		return false
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ProbeDynamoDB reports whether endpoint answers DynamoDB's ListTables.
func ProbeDynamoDB(ctx context.Context, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := NewDynamoDBClient(endpoint)
	_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}, func(o *dynamodb.Options) {
		o.RetryMaxAttempts = 1
	})
	return err == nil
}

// SESOptions configures StartSES.
type SESOptions struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// DataDir receives ses-local.log (the emulator keeps mail and templates in memory).
	DataDir string
	// NodeModules is where aws-ses-v2-local is installed; default <repo>/infra/ses-local/node_modules.
	NodeModules string
	// Node is the node binary; default node from PATH.
	Node string
	// Reuse an emulator that already answers on Port instead of failing.
	Reuse bool
	// Lenient turns off strict template rendering. By default a template variable missing from
	// the data fails that recipient, as it does in SES (a rendering failure, no mail), instead
	// of rendering an empty string.
	Lenient bool
	// StartTimeout bounds the wait for the first answer; default 30 s.
	StartTimeout time.Duration
}

// StartSES starts the aws-ses-v2-local emulator and waits until it answers.
func StartSES(ctx context.Context, opts SESOptions) (*Service, error) {
	if opts.Reuse && opts.Port != 0 && ProbeSES(ctx, endpoint(opts.Port)) {
		return &Service{Name: "ses-local", Endpoint: endpoint(opts.Port), Port: opts.Port, Reused: true}, nil
	}
	if portInUse(opts.Port) {
		return nil, fmt.Errorf("port %d is in use by something that is not the SES emulator; choose another port (SES_PORT)", opts.Port)
	}
	nm := opts.NodeModules
	if nm == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		nm = filepath.Join(root, "infra", "ses-local", "node_modules")
	}
	cli := filepath.Join(nm, "aws-ses-v2-local", "dist", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return nil, &MissingDepsError{What: "the SES emulator is not installed (no " + cli + ")"}
	}
	node := opts.Node
	if node == "" {
		node = "node"
	}
	if _, err := exec.LookPath(node); err != nil {
		return nil, &MissingDepsError{What: "the SES emulator needs Node.js, and " + node + " was not found"}
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("localstack: SESOptions.DataDir is required")
	}
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	env := childEnv()
	if !opts.Lenient && os.Getenv("AWS_SES_STRICT_TEMPLATE_RENDERING") == "" {
		env = append(env, "AWS_SES_STRICT_TEMPLATE_RENDERING=true")
	}
	logPath := filepath.Join(opts.DataDir, "ses-local.log")
	return launch(ctx, launchSpec{name: "ses-local", title: "SES emulator", logPath: logPath, argv: []string{node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port)}, env: env,
		port: port, timeout: opts.StartTimeout, defaultTimeout: 30 * time.Second, probe: ProbeSES})
}

// ProbeSES reports whether endpoint is an aws-ses-v2-local emulator (its GET /store answers
// with the mail store).
func ProbeSES(ctx context.Context, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/store?since=4102444800", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var store struct {
		Emails []json.RawMessage `json:"emails"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&store) == nil && store.Emails != nil
}

// javaRuntime is the java binary the JVM services (DynamoDB Local, ElasticMQ) run on: the one
// given, else $JAVA_HOME/bin/java, else java from PATH; a MissingDepsError naming the service
// when there is none.
func javaRuntime(given, service string) (string, error) {
	java := given
	if java == "" {
		java = "java"
		if home := os.Getenv("JAVA_HOME"); home != "" {
			java = filepath.Join(home, "bin", "java")
		}
	}
	if _, err := exec.LookPath(java); err != nil {
		return "", &MissingDepsError{What: service + " needs a Java runtime (17+), and " + java + " was not found"}
	}
	return java, nil
}
