// Package samtemplate reads rollcall's SAM template (template.yaml), the single source of
// truth for routes, the table, schedules and mail templates, so the local stack derives all of
// them from the file instead of keeping a second copy.
//
// It understands the subset of CloudFormation/SAM that the local stack needs: short intrinsic
// tags (!Ref, !Sub, !GetAtt, !If, !Not, !Equals, !Join, !Select, ...), Globals.Function,
// AWS::Serverless::Function events (HttpApi, DynamoDB, Schedule), AWS::DynamoDB::Table and
// AWS::SES::Template.
package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// FileName is the template's name at the repository root.
const FileName = "template.yaml"

// Template is a parsed SAM template.
type Template struct {
	// Path is the file it was loaded from ("" for Parse).
	Path string

	Parameters map[string]Parameter
	// Conditions holds each condition's (unevaluated) expression.
	Conditions map[string]any
	// Resources by logical id; ResourceIDs keeps file order.
	Resources   map[string]Resource
	ResourceIDs []string

	globalFunction map[string]any
	functions      []Function
}

// Parameter is one entry of Parameters.
type Parameter struct {
	Type       string
	Default    string
	HasDefault bool
}

// Resource is one entry of Resources, with intrinsics in long form ({"Ref": ...}).
type Resource struct {
	LogicalID  string
	Type       string
	Properties map[string]any
}

// Load reads and parses a template file.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// Find locates template.yaml by walking up from the working directory, so code running in a
// package directory (go test) finds the repository's template.
func Find() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("samtemplate: %w", err)
	}
	for {
		p := filepath.Join(dir, FileName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("samtemplate: no " + FileName + " in the working directory or any parent")
		}
		dir = parent
	}
}

// LoadDefault is Load(Find()).
func LoadDefault() (*Template, error) {
	p, err := Find()
	if err != nil {
		return nil, err
	}
	return Load(p)
}

// Parse parses template YAML.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("samtemplate: template is not a YAML mapping")
	}
	root := doc.Content[0]
	v, err := toValue(root)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	top := v.(map[string]any)

	t := &Template{
		Parameters: map[string]Parameter{},
		Conditions: map[string]any{},
		Resources:  map[string]Resource{},
	}
	for name, pv := range asMap(top["Parameters"]) {
		pm := asMap(pv)
		p := Parameter{Type: asString(pm["Type"])}
		if d, ok := pm["Default"]; ok {
			s, err := scalarString(d)
			if err != nil {
				return nil, fmt.Errorf("samtemplate: parameter %s default: %w", name, err)
			}
			p.Default, p.HasDefault = s, true
		}
		t.Parameters[name] = p
	}
	for name, c := range asMap(top["Conditions"]) {
		t.Conditions[name] = c
	}
	t.globalFunction = asMap(asMap(top["Globals"])["Function"])

	resources := asMap(top["Resources"])
	if len(resources) == 0 {
		return nil, errors.New("samtemplate: template has no Resources")
	}
	for _, id := range mappingKeys(mappingValue(root, "Resources")) {
		rm := asMap(resources[id])
		typ := asString(rm["Type"])
		if typ == "" {
			return nil, fmt.Errorf("samtemplate: resource %s has no Type", id)
		}
		t.Resources[id] = Resource{LogicalID: id, Type: typ, Properties: asMap(rm["Properties"])}
		t.ResourceIDs = append(t.ResourceIDs, id)
	}
	// Functions are parsed eagerly so a malformed event (a bad rate expression, an HttpApi
	// event without a path) fails at load time rather than when the runner gets to it.
	resNode := mappingValue(root, "Resources")
	for _, id := range t.ResourceIDs {
		if t.Resources[id].Type != TypeFunction {
			continue
		}
		events := mappingValue(mappingValue(mappingValue(resNode, id), "Properties"), "Events")
		fn, err := t.parseFunction(t.Resources[id], mappingKeys(events))
		if err != nil {
			return nil, fmt.Errorf("samtemplate: %s: %w", id, err)
		}
		t.functions = append(t.functions, fn)
	}
	return t, nil
}

// ResourcesOfType returns the resources of one type in file order.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, id := range t.ResourceIDs {
		if r := t.Resources[id]; r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Resource types the local stack reads.
const (
	TypeFunction      = "AWS::Serverless::Function"
	TypeTable         = "AWS::DynamoDB::Table"
	TypeEmailTemplate = "AWS::SES::Template"
)

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
