package app_test

import (
	"go/parser"
	gotoken "go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Adapters depend on the domain only: none imports another adapter (the ports they share
// live in internal/rollcall), so the store, the stream functions and the HTTP adapter each
// link what their technology needs and no other adapter's code. internal/app wires them.
func TestAdaptersImportOnlyTheDomain(t *testing.T) {
	adapters := []string{"auth", "dynamo", "emf", "httpapi", "jobqueue", "secrets", "ses", "stream", "uploads"}
	isAdapter := map[string]bool{}
	for _, a := range adapters {
		isAdapter["github.com/rollcall/rollcall/internal/"+a] = true
	}
	for _, a := range adapters {
		files, err := filepath.Glob(filepath.Join("..", a, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no files (%v)", a, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			parsed, err := parser.ParseFile(gotoken.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if isAdapter[path] {
					t.Errorf("%s imports %s: adapters share ports in internal/rollcall instead", f, path)
				}
			}
		}
	}
}

// No function links an AWS SDK service module but DynamoDB's: the few calls made to SES, SQS,
// S3 and Secrets Manager go through internal/awscall, because each service module's package
// initialization (its generated schemas and endpoint tables) costs every cold start of the
// function that links it (the SES v2 module alone: about 1.2 ms and 1.2 MiB, see make bench).
func TestFunctionsLinkOnlyTheDynamoDBModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	dirs, err := filepath.Glob(filepath.Join("..", "..", "functions", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no functions (%v)", err)
	}
	for _, dir := range dirs {
		pkg := "github.com/rollcall/rollcall/functions/" + filepath.Base(dir)
		out, err := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if rest, ok := strings.CutPrefix(dep, "github.com/aws/aws-sdk-go-v2/service/"); ok &&
				rest != "dynamodb" && !strings.HasPrefix(rest, "dynamodb/") && !strings.HasPrefix(rest, "internal/") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
