package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/rollcall/rollcall/internal/app/functions"
	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// Every function of template.yaml has a Makefile build target (SAM's makefile build method)
// whose main starts that same function: a main that names another function would deploy the
// wrong handler, and nothing else would notice before AWS.
func TestMainsStartTheirFunction(t *testing.T) {
	root, err := localstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	fns := tpl.ResourcesOfType(samtemplate.TypeFunction)
	if len(fns) == 0 {
		t.Fatal("no functions in template.yaml")
	}
	for _, fn := range fns {
		target := regexp.MustCompile(`(?m)^build-` + regexp.QuoteMeta(fn.LogicalID) + `:\n\t\$\(LAMBDA_BUILD\) \./(functions/[a-z-]+)$`)
		m := target.FindSubmatch(makefile)
		if m == nil {
			t.Errorf("%s: no build-%s target building ./functions/<name>", fn.LogicalID, fn.LogicalID)
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, string(m[1]), "main.go"))
		if err != nil {
			t.Errorf("%s: %v", fn.LogicalID, err)
			continue
		}
		// The builder has the function's name (web.BulkEnrollFunction), as in the table.
		call := regexp.MustCompile(`app\.Start\(` + regexp.QuoteMeta(strconv.Quote(fn.LogicalID)) + `, [a-z]+\.` + fn.LogicalID + `\)`)
		if !call.Match(src) {
			t.Errorf("%s: %s/main.go does not call app.Start(%q, <package>.%s)", fn.LogicalID, m[1], fn.LogicalID, fn.LogicalID)
		}
		if !slices.Contains(functions.LogicalIDs(), fn.LogicalID) {
			t.Errorf("%s: not in internal/app/functions' table", fn.LogicalID)
		}
	}
}
