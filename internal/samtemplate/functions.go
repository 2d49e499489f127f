package samtemplate

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Function is an AWS::Serverless::Function with what the local stack needs to run it.
type Function struct {
	LogicalID string
	// Timeout is the function's (or Globals') Timeout; SAM's default is 3 s.
	Timeout   time.Duration
	Routes    []Route
	Streams   []StreamEvent
	Schedules []ScheduleEvent
	// Queues are the function's SQS events. The local stack has no queue yet: a runner for them
	// comes with the first function that has one.
	Queues []QueueEvent
	// EnvVars are the names of the environment variables (Globals + function), sorted.
	EnvVars []string

	env map[string]any // name -> unevaluated value
}

// Route is an HttpApi event.
type Route struct {
	EventName string
	Method    string // upper case; "ANY" matches every method
	Path      string // e.g. /api/courses/{course_id}; "$default" for the catch-all route
}

// Key is the route key API Gateway puts in routeKey ("POST /x", or "$default").
func (r Route) Key() string {
	if r.Path == DefaultRoute {
		return DefaultRoute
	}
	return r.Method + " " + r.Path
}

// DefaultRoute is the path of an HttpApi event without Method and Path (SAM's catch-all).
const DefaultRoute = "$default"

// StreamEvent is a DynamoDB (stream) event.
type StreamEvent struct {
	EventName string
	// Stream is the unevaluated Stream property (e.g. {"Fn::GetAtt": ["Table", "StreamArn"]}).
	Stream any
	// Table is the logical id of the table whose stream it is, when Stream is !GetAtt X.StreamArn.
	Table                 string
	StartingPosition      string
	BatchSize             int // default 100, as in Lambda
	MaximumBatchingWindow time.Duration
	MaximumRetryAttempts  int // -1 = retry until the record expires (Lambda's default)
	// MaximumRecordAge: records older than this are given up; 0 = until they expire (-1).
	MaximumRecordAge time.Duration
	// OnFailure is the unevaluated DestinationConfig.OnFailure.Destination (nil: none), and
	// OnFailureResource its logical id when it is !GetAtt X.Arn or !Ref X.
	OnFailure                  any
	OnFailureResource          string
	BisectBatchOnFunctionError bool
	FunctionResponseTypes      []string
}

// ReportBatchItemFailures tells whether the function reports partial batch failures.
func (s StreamEvent) ReportBatchItemFailures() bool {
	for _, t := range s.FunctionResponseTypes {
		if t == "ReportBatchItemFailures" {
			return true
		}
	}
	return false
}

// ScheduleEvent is a Schedule (EventBridge rule) event.
type ScheduleEvent struct {
	EventName  string
	Expression string // as written, e.g. rate(1 hour)
	// Rate is the period of a rate() expression; 0 for expressions the local stack cannot run
	// on a timer (cron), which can still be fired on demand.
	Rate    time.Duration
	Enabled bool
	// Input is the event's Input property (a JSON string), if any.
	Input string
}

// QueueEvent is an SQS event.
type QueueEvent struct {
	EventName string
	// Queue is the unevaluated Queue property (the queue's ARN, e.g. !GetAtt Jobs.Arn).
	Queue any
	// QueueID is the logical id of the queue when Queue is !GetAtt X.Arn.
	QueueID               string
	BatchSize             int // default 10, as in Lambda
	MaximumBatchingWindow time.Duration
	FunctionResponseTypes []string
}

// ReportBatchItemFailures tells whether the function reports partial batch failures.
func (q QueueEvent) ReportBatchItemFailures() bool {
	for _, t := range q.FunctionResponseTypes {
		if t == "ReportBatchItemFailures" {
			return true
		}
	}
	return false
}

// Functions returns the template's functions in file order.
func (t *Template) Functions() []Function {
	out := make([]Function, len(t.functions))
	copy(out, t.functions)
	return out
}

// Function returns one function by logical id.
func (t *Template) Function(logicalID string) (Function, bool) {
	for _, f := range t.functions {
		if f.LogicalID == logicalID {
			return f, true
		}
	}
	return Function{}, false
}

// FunctionEnv evaluates a function's environment variables with values (see Resolve).
// Variables whose value depends on something values does not provide (e.g. !Ref Table) are
// listed in unresolved and left out of env.
func (t *Template) FunctionEnv(f Function, values map[string]string) (env map[string]string, unresolved []string, err error) {
	env = map[string]string{}
	for _, name := range f.EnvVars {
		v, err := t.Resolve(f.env[name], values)
		var u *UnresolvedError
		switch {
		case errors.As(err, &u):
			unresolved = append(unresolved, name)
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("samtemplate: %s env %s: %w", f.LogicalID, name, err)
		case v == nil: // AWS::NoValue (or null): the variable is not set
			continue
		}
		s, err := scalarString(v)
		if err != nil {
			return nil, nil, fmt.Errorf("samtemplate: %s env %s: %w", f.LogicalID, name, err)
		}
		env[name] = s
	}
	return env, unresolved, nil
}

// parseFunction reads one function; eventOrder is the order of its Events in the file.
func (t *Template) parseFunction(r Resource, eventOrder []string) (Function, error) {
	f := Function{LogicalID: r.LogicalID, Timeout: 3 * time.Second, env: map[string]any{}}

	for _, props := range []map[string]any{t.globalFunction, r.Properties} {
		if v, ok := props["Timeout"]; ok {
			d, err := t.seconds(v)
			if err != nil {
				return f, fmt.Errorf("property Timeout: %w", err)
			}
			f.Timeout = d
		}
		for name, val := range asMap(asMap(props["Environment"])["Variables"]) {
			f.env[name] = val
		}
	}
	f.EnvVars = sortedKeys(f.env)

	events := asMap(r.Properties["Events"])
	for _, name := range eventOrder {
		ev := asMap(events[name])
		p := asMap(ev["Properties"])
		switch typ := asString(ev["Type"]); typ {
		case "HttpApi":
			rt, err := parseRoute(name, p)
			if err != nil {
				return f, err
			}
			f.Routes = append(f.Routes, rt)
		case "DynamoDB":
			se, err := t.parseStream(name, p)
			if err != nil {
				return f, err
			}
			f.Streams = append(f.Streams, se)
		case "Schedule", "ScheduleV2":
			se, err := t.parseSchedule(name, typ, p)
			if err != nil {
				return f, err
			}
			f.Schedules = append(f.Schedules, se)
		case "SQS":
			qe, err := t.parseQueue(name, p)
			if err != nil {
				return f, err
			}
			f.Queues = append(f.Queues, qe)
		default:
			// An event the local stack cannot deliver would silently never run locally.
			return f, fmt.Errorf("event %s: type %q is not supported (HttpApi, DynamoDB, Schedule, ScheduleV2, SQS)", name, typ)
		}
	}
	return f, nil
}

func (t *Template) parseQueue(name string, p map[string]any) (QueueEvent, error) {
	qe := QueueEvent{EventName: name, Queue: p["Queue"], BatchSize: 10}
	if qe.Queue == nil {
		return qe, fmt.Errorf("SQS event %s: Queue is required", name)
	}
	if ga := asList(asMap(qe.Queue)["Fn::GetAtt"]); len(ga) == 2 && ga[1] == "Arn" {
		qe.QueueID, _ = ga[0].(string)
	}
	if v, ok := p["BatchSize"]; ok {
		n, err := t.integer(v)
		if err != nil || n < 1 || n > 10000 {
			return qe, fmt.Errorf("SQS event %s: BatchSize %v", name, v)
		}
		qe.BatchSize = n
	}
	if v, ok := p["MaximumBatchingWindowInSeconds"]; ok {
		d, err := t.seconds(v)
		if err != nil {
			return qe, fmt.Errorf("SQS event %s: MaximumBatchingWindowInSeconds: %w", name, err)
		}
		qe.MaximumBatchingWindow = d
	}
	for _, v := range asList(p["FunctionResponseTypes"]) {
		qe.FunctionResponseTypes = append(qe.FunctionResponseTypes, asString(v))
	}
	return qe, nil
}

func parseRoute(name string, p map[string]any) (Route, error) {
	method, path := asString(p["Method"]), asString(p["Path"])
	if method == "" && path == "" {
		return Route{EventName: name, Method: "ANY", Path: DefaultRoute}, nil
	}
	if method == "" || path == "" {
		return Route{}, fmt.Errorf("HttpApi event %s: Method and Path go together", name)
	}
	if !strings.HasPrefix(path, "/") {
		return Route{}, fmt.Errorf("HttpApi event %s: path %q must start with /", name, path)
	}
	return Route{EventName: name, Method: strings.ToUpper(method), Path: path}, nil
}

func (t *Template) parseStream(name string, p map[string]any) (StreamEvent, error) {
	se := StreamEvent{
		EventName:            name,
		Stream:               p["Stream"],
		StartingPosition:     asString(p["StartingPosition"]),
		BatchSize:            100,
		MaximumRetryAttempts: -1,
	}
	if ga := asList(asMap(se.Stream)["Fn::GetAtt"]); len(ga) == 2 && ga[1] == "StreamArn" {
		se.Table, _ = ga[0].(string)
	}
	if v, ok := p["BatchSize"]; ok {
		n, err := t.integer(v)
		if err != nil || n < 1 || n > 10000 {
			return se, fmt.Errorf("DynamoDB event %s: BatchSize %v", name, v)
		}
		se.BatchSize = n
	}
	if v, ok := p["MaximumBatchingWindowInSeconds"]; ok {
		d, err := t.seconds(v)
		if err != nil {
			return se, fmt.Errorf("DynamoDB event %s: MaximumBatchingWindowInSeconds: %w", name, err)
		}
		se.MaximumBatchingWindow = d
	}
	if v, ok := p["MaximumRetryAttempts"]; ok {
		n, err := t.integer(v)
		if err != nil {
			return se, fmt.Errorf("DynamoDB event %s: MaximumRetryAttempts: %w", name, err)
		}
		se.MaximumRetryAttempts = n
	}
	if v, ok := p["MaximumRecordAgeInSeconds"]; ok {
		n, err := t.integer(v)
		if err != nil || (n != -1 && (n < 60 || n > 604800)) {
			return se, fmt.Errorf("DynamoDB event %s: MaximumRecordAgeInSeconds %v: want -1 or 60-604800", name, v)
		}
		if n > 0 {
			se.MaximumRecordAge = time.Duration(n) * time.Second
		}
	}
	if d, ok := asMap(asMap(p["DestinationConfig"])["OnFailure"])["Destination"]; ok {
		se.OnFailure = d
		if ga := asList(asMap(d)["Fn::GetAtt"]); len(ga) == 2 {
			se.OnFailureResource, _ = ga[0].(string)
		} else if ref, ok := asMap(d)["Ref"].(string); ok {
			se.OnFailureResource = ref
		}
	}
	if v, ok := p["BisectBatchOnFunctionError"].(bool); ok {
		se.BisectBatchOnFunctionError = v
	}
	for _, v := range asList(p["FunctionResponseTypes"]) {
		se.FunctionResponseTypes = append(se.FunctionResponseTypes, asString(v))
	}
	return se, nil
}

func (t *Template) parseSchedule(name, typ string, p map[string]any) (ScheduleEvent, error) {
	key := "Schedule"
	if typ == "ScheduleV2" {
		key = "ScheduleExpression"
	}
	expr, err := t.ResolveString(p[key], nil)
	if err != nil {
		return ScheduleEvent{}, fmt.Errorf("%s event %s: %w", typ, name, err)
	}
	se := ScheduleEvent{EventName: name, Expression: expr, Enabled: true, Input: asString(p["Input"])}
	if v, ok := p["Enabled"].(bool); ok {
		se.Enabled = v
	}
	if s := asString(p["State"]); s == "DISABLED" {
		se.Enabled = false
	}
	if strings.HasPrefix(expr, "rate(") {
		se.Rate, err = ParseRate(expr)
		if err != nil {
			return se, fmt.Errorf("%s event %s: %w", typ, name, err)
		}
	}
	return se, nil
}

// Compiled on first use, not at package load (every binary links this package).
var rateRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$`)
})

// ParseRate parses an EventBridge rate expression: rate(N minute|minutes|hour|hours|day|days).
// Like EventBridge it wants the singular unit for 1 and the plural otherwise, so a template
// the local stack accepts also deploys.
func ParseRate(expr string) (time.Duration, error) {
	m := rateRE().FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return 0, fmt.Errorf("schedule %q: want rate(N minute[s]|hour[s]|day[s])", expr)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("schedule %q: the rate must be a positive integer", expr)
	}
	unit := m[2]
	if plural := strings.HasSuffix(unit, "s"); plural != (n != 1) {
		return 0, fmt.Errorf("schedule %q: use the singular unit for 1 and the plural otherwise", expr)
	}
	var d time.Duration
	switch strings.TrimSuffix(unit, "s") {
	case "minute":
		d = time.Minute
	case "hour":
		d = time.Hour
	case "day":
		d = 24 * time.Hour
	}
	return time.Duration(n) * d, nil
}

func (t *Template) integer(v any) (int, error) {
	s, err := t.ResolveString(v, nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

func (t *Template) seconds(v any) (time.Duration, error) {
	s, err := t.ResolveString(v, nil)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}
