package samtemplate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Pseudo parameters as the local stack sees them. They only matter for values that embed them
// (e.g. an ARN built with !Sub); nothing local talks to a real account.
var pseudoParams = map[string]string{
	"AWS::Region":    "us-east-1",
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::URLSuffix": "amazonaws.com",
	"AWS::StackName": "rollcall-local",
	"AWS::StackId":   "arn:aws:cloudformation:us-east-1:123456789012:stack/rollcall-local/00000000-0000-0000-0000-000000000000",
}

// noValue is what !Ref AWS::NoValue evaluates to: the enclosing key or list item disappears.
type noValueT struct{}

var noValue = noValueT{}

// UnresolvedError reports a reference that neither the given values nor a parameter default
// could resolve (typically a resource attribute such as !GetAtt Table.Arn).
type UnresolvedError struct{ Ref string }

func (e *UnresolvedError) Error() string { return "samtemplate: unresolved reference " + e.Ref }

// Resolve evaluates the intrinsic functions in v (a value taken from the template).
// values supplies parameter values and what references to resources resolve to: "Table" for
// !Ref Table and "Table.Arn" for !GetAtt Table.Arn / ${Table.Arn}. Parameters missing from
// values take their Default. Supported: Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Not, Fn::Equals,
// Fn::And, Fn::Or, Fn::Join, Fn::Select, Fn::Split, Condition.
func (t *Template) Resolve(v any, values map[string]string) (any, error) {
	e := &evaluator{t: t, values: values}
	out, err := e.eval(v)
	if err != nil {
		return nil, err
	}
	if out == noValue {
		return nil, nil
	}
	return out, nil
}

// ResolveString is Resolve for values that must end up a string (numbers and booleans are
// formatted the way CloudFormation passes them to a resource: 10, true).
func (t *Template) ResolveString(v any, values map[string]string) (string, error) {
	out, err := t.Resolve(v, values)
	if err != nil {
		return "", err
	}
	return scalarString(out)
}

type evaluator struct {
	t      *Template
	values map[string]string
	depth  int
}

func (e *evaluator) eval(v any) (any, error) {
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > 64 {
		return nil, fmt.Errorf("samtemplate: intrinsic functions nested too deeply (a condition cycle?)")
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return e.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func (e *evaluator) intrinsic(name string, arg any) (any, error) {
	switch name {
	case "Ref":
		ref, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Ref wants a name, got %T", arg)
		}
		if ref == "AWS::NoValue" {
			return noValue, nil
		}
		return e.ref(ref)
	case "Fn::GetAtt":
		parts, err := e.stringList(arg)
		if err != nil || len(parts) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::GetAtt wants [Resource, Attribute]")
		}
		return e.ref(parts[0] + "." + parts[1])
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::Join":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Join wants [delimiter, list]")
		}
		delim, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Fn::Join delimiter must be a string")
		}
		items, err := e.stringList(args[1])
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::Join: %w", err)
		}
		return strings.Join(items, delim), nil
	case "Fn::Select":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Select wants [index, list]")
		}
		idxV, err := e.eval(args[0])
		if err != nil {
			return nil, err
		}
		idxS, err := scalarString(idxV)
		if err != nil {
			return nil, err
		}
		idx, err := strconv.Atoi(idxS)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::Select index %q", idxS)
		}
		listV, err := e.eval(args[1])
		if err != nil {
			return nil, err
		}
		list, ok := listV.([]any)
		if !ok || idx < 0 || idx >= len(list) {
			return nil, fmt.Errorf("samtemplate: Fn::Select index %d out of range", idx)
		}
		return list[idx], nil
	case "Fn::Split":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Split wants [delimiter, string]")
		}
		delim, ok := args[0].(string)
		if !ok || delim == "" {
			return nil, fmt.Errorf("samtemplate: Fn::Split delimiter must be a non-empty string")
		}
		src, err := e.evalString(args[1])
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::Split: %w", err)
		}
		parts := strings.Split(src, delim)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "Fn::If":
		args, ok := arg.([]any)
		if !ok || len(args) != 3 {
			return nil, fmt.Errorf("samtemplate: Fn::If wants [condition, then, else]")
		}
		cond, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Fn::If condition must be a name")
		}
		b, err := e.condition(cond)
		if err != nil {
			return nil, err
		}
		if b {
			return e.eval(args[1])
		}
		return e.eval(args[2])
	case "Condition":
		cond, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Condition wants a name")
		}
		return e.condition(cond)
	case "Fn::Equals":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Equals wants two values")
		}
		a, err := e.evalString(args[0])
		if err != nil {
			return nil, err
		}
		b, err := e.evalString(args[1])
		if err != nil {
			return nil, err
		}
		return a == b, nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		args, ok := arg.([]any)
		if !ok || len(args) == 0 || (name == "Fn::Not" && len(args) != 1) {
			return nil, fmt.Errorf("samtemplate: %s wants a list of conditions", name)
		}
		bs := make([]bool, len(args))
		for i, a := range args {
			r, err := e.eval(a)
			if err != nil {
				return nil, err
			}
			b, ok := r.(bool)
			if !ok {
				return nil, fmt.Errorf("samtemplate: %s operand is %T, not a condition", name, r)
			}
			bs[i] = b
		}
		switch name {
		case "Fn::Not":
			return !bs[0], nil
		case "Fn::And":
			for _, b := range bs {
				if !b {
					return false, nil
				}
			}
			return true, nil
		default:
			for _, b := range bs {
				if b {
					return true, nil
				}
			}
			return false, nil
		}
	}
	return nil, fmt.Errorf("samtemplate: unsupported intrinsic function %s", name)
}

// ref resolves a name (Ref) or Resource.Attribute (GetAtt): explicit values first, then
// pseudo parameters, then parameter defaults.
func (e *evaluator) ref(name string) (any, error) {
	if v, ok := e.values[name]; ok {
		return v, nil
	}
	if v, ok := pseudoParams[name]; ok {
		return v, nil
	}
	if p, ok := e.t.Parameters[name]; ok && p.HasDefault {
		return p.Default, nil
	}
	return nil, &UnresolvedError{Ref: name}
}

func (e *evaluator) condition(name string) (bool, error) {
	c, ok := e.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("samtemplate: unknown condition %q", name)
	}
	r, err := e.eval(c)
	if err != nil {
		return false, err
	}
	b, ok := r.(bool)
	if !ok {
		return false, fmt.Errorf("samtemplate: condition %q is %T, not a boolean", name, r)
	}
	return b, nil
}

// sub implements Fn::Sub: "${Name}", "${Res.Attr}" and the "${!Literal}" escape, with an
// optional variable map as the second list item.
func (e *evaluator) sub(arg any) (any, error) {
	var tmpl string
	vars := map[string]any{}
	switch x := arg.(type) {
	case string:
		tmpl = x
	case []any:
		if len(x) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Sub wants a string or [string, map]")
		}
		s, ok := x[0].(string)
		m, ok2 := x[1].(map[string]any)
		if !ok || !ok2 {
			return nil, fmt.Errorf("samtemplate: Fn::Sub wants [string, map]")
		}
		tmpl, vars = s, m
	default:
		return nil, fmt.Errorf("samtemplate: Fn::Sub wants a string, got %T", arg)
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		j := strings.Index(tmpl[i:], "}")
		if j < 0 {
			return nil, fmt.Errorf("samtemplate: Fn::Sub: unterminated ${ in %q", tmpl)
		}
		name := tmpl[i+2 : i+j]
		tmpl = tmpl[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var val any
		var err error
		if v, ok := vars[name]; ok {
			val, err = e.eval(v)
		} else {
			val, err = e.ref(strings.TrimSpace(name))
		}
		if err != nil {
			return nil, err
		}
		s, err := scalarString(val)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::Sub ${%s}: %w", name, err)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func (e *evaluator) evalString(v any) (string, error) {
	r, err := e.eval(v)
	if err != nil {
		return "", err
	}
	return scalarString(r)
}

func (e *evaluator) stringList(v any) ([]string, error) {
	r, err := e.eval(v)
	if err != nil {
		return nil, err
	}
	list, ok := r.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %T", r)
	}
	out := make([]string, len(list))
	for i, item := range list {
		s, err := scalarString(item)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// scalarString formats a resolved scalar as CloudFormation would pass it on.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("want a scalar, got %T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
