// Package localiam makes the local stack as strict as AWS about what a function may call: it
// evaluates each AWS SDK call a function makes against the IAM statements that template.yaml
// gives the function's role, and refuses what AWS would refuse with the error AWS returns
// (AccessDeniedException), before the call reaches DynamoDB Local or the SES emulator.
//
// The evaluation follows IAM's rules for identity policies: an explicit Deny wins, then an
// Allow, and a request nothing allows is denied; Action and Resource take the * and ?
// wildcards (actions case-insensitively); Condition takes the string, ARN, Bool and Null
// operators with IfExists and the ForAnyValue/ForAllValues set operators. Each call is turned
// into the IAM action(s) and resource ARN(s) AWS authorizes it as (see requests.go); a call
// the package cannot map is refused, so nothing new slips through unchecked.
package localiam

import (
	"fmt"
	"strings"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// Request is one authorization: an action on a resource, with the request's condition keys.
type Request struct {
	Action   string // e.g. dynamodb:Query
	Resource string // an ARN, or * for actions without a resource
	// Alternatives are other ARNs the same request is authorized on if Resource is not (an
	// SES sender's domain identity when the address is not allowed itself).
	Alternatives []string
	// Context holds the condition keys of the request (lower case), e.g. ses:fromaddress.
	Context map[string][]string
}

// Decision is the outcome of an evaluation.
type Decision int

const (
	ImplicitDeny Decision = iota // no statement allows it
	Allow
	ExplicitDeny // a Deny statement matches
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Policy is a function's role: its statements, ready to evaluate.
type Policy struct {
	Function   string
	statements []statement
}

type statement struct {
	src        samtemplate.PolicyStatement
	deny       bool
	conditions []condition
}

// New checks the statements (effects, condition operators) and returns the policy.
func New(function string, statements []samtemplate.PolicyStatement) (*Policy, error) {
	p := &Policy{Function: function}
	for _, s := range statements {
		st := statement{src: s}
		switch s.Effect {
		case "Allow":
		case "Deny":
			st.deny = true
		default:
			return nil, fmt.Errorf("localiam: %s: %s: Effect %q", function, s.Source, s.Effect)
		}
		for op, keys := range s.Condition {
			for key, vals := range keys {
				c, err := newCondition(op, key, vals)
				if err != nil {
					return nil, fmt.Errorf("localiam: %s: %s: %w", function, s.Source, err)
				}
				st.conditions = append(st.conditions, c)
			}
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

// Decide evaluates one request.
func (p *Policy) Decide(r Request) Decision {
	d := p.decide(r.Action, r.Resource, r.Context)
	for _, alt := range r.Alternatives {
		switch p.decide(r.Action, alt, r.Context) {
		case ExplicitDeny:
			return ExplicitDeny
		case Allow:
			if d == ImplicitDeny {
				d = Allow
			}
		}
	}
	return d
}

func (p *Policy) decide(action, resource string, ctx map[string][]string) Decision {
	allowed := false
	for _, s := range p.statements {
		if !s.matches(action, resource, ctx) {
			continue
		}
		if s.deny {
			return ExplicitDeny
		}
		allowed = true
	}
	if allowed {
		return Allow
	}
	return ImplicitDeny
}

func (s statement) matches(action, resource string, ctx map[string][]string) bool {
	if len(s.src.Action) > 0 && !anyMatch(s.src.Action, action, matchAction) {
		return false
	}
	if len(s.src.NotAction) > 0 && anyMatch(s.src.NotAction, action, matchAction) {
		return false
	}
	if len(s.src.Resource) > 0 && !anyMatch(s.src.Resource, resource, MatchARN) {
		return false
	}
	if len(s.src.NotResource) > 0 && anyMatch(s.src.NotResource, resource, MatchARN) {
		return false
	}
	for _, c := range s.conditions {
		if !c.eval(ctx) {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, s string, match func(pattern, s string) bool) bool {
	for _, p := range patterns {
		if match(p, s) {
			return true
		}
	}
	return false
}

// matchAction matches an action (service:Name) against a pattern, case-insensitively.
func matchAction(pattern, action string) bool {
	if pattern == "*" {
		return true
	}
	return glob(strings.ToLower(pattern), strings.ToLower(action))
}

// MatchARN matches a resource ARN against a policy's Resource entry as IAM does: * alone
// matches everything; otherwise the pattern and the ARN are compared segment by segment
// (partition, service, region, account), each with * and ?, and the resource part, which may
// hold colons and slashes, with * matching across them.
func MatchARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	ps, ok1 := splitARN(pattern)
	as, ok2 := splitARN(arn)
	if !ok1 || !ok2 {
		return false // a malformed pattern matches nothing; a resource "*" only the pattern *
	}
	for i := range ps {
		if !glob(ps[i], as[i]) {
			return false
		}
	}
	return true
}

// splitARN splits arn:partition:service:region:account:resource into its six parts.
func splitARN(s string) ([6]string, bool) {
	var out [6]string
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return out, false
	}
	copy(out[:], parts)
	return out, true
}

// glob matches s against a pattern where * is any run of characters and ? one character.
func glob(pattern, s string) bool {
	// Iterative matching with backtracking to the last star (linear in practice).
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// condition is one operator-key pair of a Condition block.
type condition struct {
	op       string // the base operator, e.g. StringLike
	key      string // lower case
	values   []string
	ifExists bool
	set      string // "", "ForAnyValue" or "ForAllValues"
}

var conditionOps = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true,
	"ArnEquals": true, "ArnNotEquals": true, "ArnLike": true, "ArnNotLike": true,
	"Bool": true, "Null": true,
}

func newCondition(op, key string, values []string) (condition, error) {
	c := condition{key: strings.ToLower(key), values: values}
	base := op
	if set, rest, ok := strings.Cut(base, ":"); ok {
		if set != "ForAnyValue" && set != "ForAllValues" {
			return c, fmt.Errorf("condition operator %s: unknown set operator %s", op, set)
		}
		c.set, base = set, rest
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok && b != "Null" {
		c.ifExists, base = true, b
	}
	if !conditionOps[base] {
		// Numeric, Date and IP operators: no key the local stack sets takes them.
		return c, fmt.Errorf("condition operator %s is not supported by the local IAM check", op)
	}
	c.op = base
	return c, nil
}

func (c condition) negated() bool { return strings.Contains(c.op, "Not") }

func (c condition) eval(ctx map[string][]string) bool {
	got, present := ctx[c.key]
	if c.op == "Null" {
		want := len(c.values) > 0 && strings.EqualFold(c.values[0], "true")
		return want == !present
	}
	switch c.set {
	case "ForAllValues":
		// True when every value in the request matches (so also when there is none).
		for _, v := range got {
			if !c.one(v) {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, v := range got {
			if c.one(v) {
				return true
			}
		}
		return false
	}
	if !present || len(got) == 0 {
		// A missing key fails a condition, except IfExists and the negated operators.
		return c.ifExists || c.negated()
	}
	if c.negated() {
		for _, v := range got {
			if !c.one(v) {
				return false
			}
		}
		return true
	}
	for _, v := range got {
		if c.one(v) {
			return true
		}
	}
	return false
}

// one tells whether one request value satisfies the operator against the policy's values
// (any of them for positive operators, none for negated ones).
func (c condition) one(v string) bool {
	match := false
	for _, want := range c.values {
		var m bool
		switch c.op {
		case "StringEquals", "StringNotEquals":
			m = v == want
		case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
			m = strings.EqualFold(v, want)
		case "StringLike", "StringNotLike":
			m = glob(want, v)
		case "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike":
			m = MatchARN(want, v)
		case "Bool":
			m = strings.EqualFold(v, want)
		}
		if m {
			match = true
			break
		}
	}
	if c.negated() {
		return !match
	}
	return match
}
