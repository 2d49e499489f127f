// Package emf writes CloudWatch embedded metric format lines: one JSON object per line on
// standard output, which CloudWatch Logs turns into metrics in the "rollcall" namespace with
// no API call (and so no latency or IAM permission) in the function.
package emf

import (
	"encoding/json"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Namespace is where rollcall's metrics go.
const Namespace = "rollcall"

var (
	mu  sync.Mutex
	out io.Writer = os.Stdout
)

// SetOutput sends the metric lines elsewhere (tests; the local stack); it returns the previous one.
func SetOutput(w io.Writer) io.Writer {
	mu.Lock()
	defer mu.Unlock()
	prev := out
	out = w
	return prev
}

// Emit writes one line with counts (unit Count) under the dimension Function=function.
// Zero counts are written too: a metric that is always present is easier to alarm on.
func Emit(function string, counts map[string]float64) {
	if len(counts) == 0 {
		return
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	defs := make([]map[string]string, len(names))
	line := map[string]any{"Function": function}
	for i, n := range names {
		defs[i] = map[string]string{"Name": n, "Unit": "Count"}
		line[n] = counts[n]
	}
	line["_aws"] = map[string]any{
		"Timestamp": time.Now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"Function"}},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	_, _ = out.Write(append(b, '\n'))
}
