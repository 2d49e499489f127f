package samtemplate

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// toValue converts a YAML node into plain Go values (map[string]any, []any, string, int,
// float64, bool, nil). CloudFormation short tags (!Ref, !Sub, ...) are rewritten into their
// long JSON forms ({"Ref": x}, {"Fn::Sub": x}, ...), so the evaluator only has to know one
// shape; yaml.v3 would otherwise fail to decode a tagged node into a plain value.
func toValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toValue(n.Content[0])
	case yaml.AliasNode:
		return toValue(n.Alias)
	}
	if tag := n.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		return intrinsicFromTag(n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			val, err := toValue(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := toValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node kind %d", n.Line, n.Kind)
}

// intrinsicFromTag turns `!Name arg` into {"Fn::Name": arg} (or {"Ref": arg},
// {"Condition": arg}). The argument is the node without its tag.
func intrinsicFromTag(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	inner := *n
	inner.Tag = ""
	if n.Kind == yaml.ScalarNode {
		// A tagged scalar is always a string argument (!Ref Name, !Sub 'x-${Y}'); decoding it
		// with the default resolver could turn !Ref 10 into an int.
		inner.Tag = "!!str"
	}
	arg, err := toValue(&inner)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: arg}, nil
	case "GetAtt":
		// The short form accepts "Resource.Attribute" as one string.
		if s, ok := arg.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
			}
			arg = []any{res, attr}
		}
		return map[string]any{"Fn::GetAtt": arg}, nil
	}
	return map[string]any{"Fn::" + name: arg}, nil
}

// mappingKeys returns the keys of a mapping node in file order (maps lose it).
func mappingKeys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// mappingValue returns the value node under key in a mapping node, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
