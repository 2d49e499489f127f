// Command routesgen writes internal/app/web/routes_gen.go from template.yaml
// (go generate ./internal/app/web).
package main

import (
	"flag"
	"log"
	"os"

	"github.com/rollcall/rollcall/internal/app/web/routesgen"
)

func main() {
	template := flag.String("template", "template.yaml", "the SAM template")
	out := flag.String("out", "routes_gen.go", "the Go file to write")
	flag.Parse()
	src, err := os.ReadFile(*template)
	if err != nil {
		log.Fatal(err)
	}
	code, err := routesgen.Generate(src)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		log.Fatal(err)
	}
}
