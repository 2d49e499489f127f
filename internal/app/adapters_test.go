package app_test

import (
	"go/parser"
	gotoken "go/token"
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
