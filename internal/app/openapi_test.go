package app_test

// openapi.yaml (the API contract) against template.yaml (the routes), both ways: every
// HttpApi event is an operation with the same method and path whose operationId is the event
// name, and every operation is an event. Plus the document's own consistency: unique
// operationIds, resolvable $refs, path parameters declared for every {param}, and JWT security
// everywhere except on the invitation routes.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// invitationsFunction owns the routes that take no JWT (the token in the path is the credential).
const invitationsFunction = "InvitationsFunction"

// endpoint is one method + path, from either side.
type endpoint struct {
	Method, Path string // upper-case method; path as written ({param} syntax)
	Name         string // event name / operationId
	Function     string // template side: the function's logical id
}

func (e endpoint) key() string { return e.Method + " " + e.Path }

// openAPIDoc is what the test reads of openapi.yaml; raw keeps everything for $ref checks.
type openAPIDoc struct {
	raw  map[string]any
	ops  []endpoint
	byOp map[string]map[string]any // operation object by "METHOD path"
	// pathParams are the path-level parameters by path.
	pathParams map[string][]any
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	tplPath, err := samtemplate.Find()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(tplPath), "openapi.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read the API contract: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	doc := &openAPIDoc{raw: raw, byOp: map[string]map[string]any{}, pathParams: map[string][]any{}}
	paths, ok := raw["paths"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no paths", p)
	}
	for path, item := range paths {
		pi, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("%s: path %s is not an object", p, path)
		}
		if ps, ok := pi["parameters"].([]any); ok {
			doc.pathParams[path] = ps
		}
		for k, v := range pi {
			if !slices.Contains(httpMethods, k) {
				continue
			}
			op, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s: %s %s is not an object", p, k, path)
			}
			id, _ := op["operationId"].(string)
			e := endpoint{Method: strings.ToUpper(k), Path: path, Name: id}
			doc.ops = append(doc.ops, e)
			doc.byOp[e.key()] = op
		}
	}
	sortEndpoints(doc.ops)
	return doc
}

func templateRoutes(t *testing.T) []endpoint {
	t.Helper()
	tpl, err := samtemplate.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var out []endpoint
	for _, fn := range tpl.Functions() {
		for _, r := range fn.Routes {
			out = append(out, endpoint{Method: strings.ToUpper(r.Method), Path: r.Path, Name: r.EventName, Function: fn.LogicalID})
		}
	}
	sortEndpoints(out)
	return out
}

func sortEndpoints(es []endpoint) {
	sort.Slice(es, func(i, j int) bool { return es[i].key() < es[j].key() })
}

// compareRoutes lists every way the two sides disagree (empty when they match exactly).
func compareRoutes(routes, ops []endpoint) []string {
	var problems []string
	opByKey := map[string]endpoint{}
	for _, o := range ops {
		opByKey[o.key()] = o
	}
	routeByKey := map[string]endpoint{}
	for _, r := range routes {
		if r.Path == samtemplate.DefaultRoute || r.Method == "ANY" {
			problems = append(problems, fmt.Sprintf("template route %s (%s.%s) is a catch-all; openapi.yaml cannot describe it as one operation",
				r.key(), r.Function, r.Name))
			continue
		}
		routeByKey[r.key()] = r
		o, ok := opByKey[r.key()]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("template route %s (%s.%s) has no operation in openapi.yaml", r.key(), r.Function, r.Name))
		case o.Name != r.Name:
			problems = append(problems, fmt.Sprintf("%s: operationId %q, want the template event name %q", r.key(), o.Name, r.Name))
		}
	}
	for _, o := range ops {
		if _, ok := routeByKey[o.key()]; !ok {
			problems = append(problems, fmt.Sprintf("openapi.yaml operation %s (%s) has no route in template.yaml", o.key(), o.Name))
		}
	}
	return problems
}

func TestOpenAPIMatchesTemplateRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	routes := templateRoutes(t)
	if len(routes) == 0 {
		t.Fatal("template.yaml has no HttpApi routes")
	}
	for _, p := range compareRoutes(routes, doc.ops) {
		t.Error(p)
	}
	if len(routes) != len(doc.ops) {
		t.Errorf("template.yaml has %d routes, openapi.yaml %d operations", len(routes), len(doc.ops))
	}
}

// The comparison must notice a route added on either side (and a renamed event).
func TestOpenAPIRouteComparisonDetectsDrift(t *testing.T) {
	doc := loadOpenAPI(t)
	routes := templateRoutes(t)
	if p := compareRoutes(routes, doc.ops); len(p) > 0 {
		t.Skip("the contract and the template differ already (TestOpenAPIMatchesTemplateRoutes says how)")
	}
	extra := endpoint{Method: "GET", Path: "/api/new-route/{x}", Name: "NewRoute", Function: "SomeFunction"}
	if p := compareRoutes(append(slices.Clone(routes), extra), doc.ops); len(p) != 1 || !strings.Contains(p[0], "no operation") {
		t.Errorf("a route only in the template: problems %q", p)
	}
	if p := compareRoutes(routes, append(slices.Clone(doc.ops), extra)); len(p) != 1 || !strings.Contains(p[0], "no route") {
		t.Errorf("an operation only in openapi.yaml: problems %q", p)
	}
	renamed := slices.Clone(doc.ops)
	renamed[0].Name += "X"
	if p := compareRoutes(routes, renamed); len(p) != 1 || !strings.Contains(p[0], "operationId") {
		t.Errorf("a renamed operation: problems %q", p)
	}
	catchAll := endpoint{Method: "ANY", Path: samtemplate.DefaultRoute, Name: "Default", Function: "SomeFunction"}
	if p := compareRoutes(append(slices.Clone(routes), catchAll), doc.ops); len(p) != 1 {
		t.Errorf("a catch-all route: problems %q", p)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if v, _ := doc.raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi: %q, want 3.1.x", v)
	}

	// operationIds: present and unique.
	seen := map[string]string{}
	for _, o := range doc.ops {
		if o.Name == "" {
			t.Errorf("%s has no operationId", o.key())
			continue
		}
		if prev, dup := seen[o.Name]; dup {
			t.Errorf("operationId %s is used by %s and %s", o.Name, prev, o.key())
		}
		seen[o.Name] = o.key()
	}

	// Security: the JWT everywhere, except on the invitation routes (security: []).
	if !hasBearerSecurity(doc.raw["security"]) {
		t.Error("the document's top-level security is not bearerAuth")
	}
	fnOf := map[string]string{}
	for _, r := range templateRoutes(t) {
		fnOf[r.key()] = r.Function
	}
	for _, o := range doc.ops {
		op := doc.byOp[o.key()]
		sec, overridden := op["security"]
		if fnOf[o.key()] == invitationsFunction {
			// No JWT needed; the JSON accept takes one optionally ([{}, bearerAuth]).
			list, ok := sec.([]any)
			optionalBearer := ok && len(list) == 2 && hasBearerSecurity(list[1:])
			if !overridden || !ok || (len(list) != 0 && !(o.Name == "AcceptInvitation" && optionalBearer)) {
				t.Errorf("%s (%s): an invitation route must say security: [] (or [{}, bearerAuth] for the JSON accept)", o.key(), o.Name)
			}
			continue
		}
		if overridden && !hasBearerSecurity(sec) {
			t.Errorf("%s (%s): security %v, want bearerAuth", o.key(), o.Name, sec)
		}
		if _, ok := responses(op)["401"]; !ok {
			t.Errorf("%s (%s): needs a JWT but documents no 401", o.key(), o.Name)
		}
	}

	// Every {param} of a path is a declared path parameter, and every path parameter is in the path.
	paramRe := regexp.MustCompile(`\{([^}]+)\}`)
	for _, o := range doc.ops {
		want := map[string]bool{}
		for _, m := range paramRe.FindAllStringSubmatch(o.Path, -1) {
			want[m[1]] = true
		}
		got := map[string]bool{}
		params := append(slices.Clone(doc.pathParams[o.Path]), asList(doc.byOp[o.key()]["parameters"])...)
		for _, p := range params {
			pm := doc.deref(t, p)
			if pm["in"] == "path" {
				name, _ := pm["name"].(string)
				got[name] = true
				if pm["required"] != true {
					t.Errorf("%s: path parameter %s must be required", o.key(), name)
				}
			}
		}
		for n := range want {
			if !got[n] {
				t.Errorf("%s: path parameter {%s} is not declared", o.key(), n)
			}
		}
		for n := range got {
			if !want[n] {
				t.Errorf("%s: declares path parameter %s that the path does not have", o.key(), n)
			}
		}
		if len(responses(doc.byOp[o.key()])) == 0 {
			t.Errorf("%s: no responses", o.key())
		}
	}

	// Every local $ref resolves.
	walk(doc.raw, func(ref string) {
		if _, err := doc.resolve(ref); err != nil {
			t.Errorf("$ref %s: %v", ref, err)
		}
	})
}

func hasBearerSecurity(v any) bool {
	for _, req := range asList(v) {
		if m, ok := req.(map[string]any); ok {
			if _, ok := m["bearerAuth"]; ok {
				return true
			}
		}
	}
	return false
}

func responses(op map[string]any) map[string]any {
	r, _ := op["responses"].(map[string]any)
	return r
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// deref follows a parameter's $ref.
func (d *openAPIDoc) deref(t *testing.T, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		r, err := d.resolve(ref)
		if err != nil {
			t.Fatalf("$ref %s: %v", ref, err)
		}
		m, _ = r.(map[string]any)
	}
	return m
}

// resolve follows a local JSON pointer ("#/components/...").
func (d *openAPIDoc) resolve(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("only local references are used here")
	}
	var cur any = d.raw
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("no %q", tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("bad index %q", tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("cannot descend into %q", tok)
		}
	}
	return cur, nil
}

// walk calls fn with every $ref in v.
func walk(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			fn(ref)
		}
		for _, y := range x {
			walk(y, fn)
		}
	case []any:
		for _, y := range x {
			walk(y, fn)
		}
	}
}
