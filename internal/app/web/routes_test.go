package web_test

import (
	"bytes"
	"os"
	"testing"

	sam "github.com/rollcall/rollcall"
	"github.com/rollcall/rollcall/internal/app/web/routesgen"
)

// The route table compiled into the HTTP functions is template.yaml's: a route added to the
// template without regenerating fails here.
func TestRoutesMatchTemplate(t *testing.T) {
	want, err := routesgen.Generate(sam.Template)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("routes_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("routes_gen.go is stale: run go generate ./internal/app/web")
	}
}
