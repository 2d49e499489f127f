package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// traceHandler is the started stack's function logger: it tallies the Debug line every small
// bulk request logs when it ends (rollcall.TraceMessage: round trips, commit attempts, why
// attempts were refused, time per phase) and passes every other record at level or above to
// next.
type traceHandler struct {
	next  slog.Handler
	level slog.Level
	tally *traceTally
}

func (h *traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level || l == slog.LevelDebug
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == rollcall.TraceMessage {
		h.tally.add(r)
		return nil
	}
	if r.Level < h.level {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &traceHandler{next: h.next.WithAttrs(as), level: h.level, tally: h.tally}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{next: h.next.WithGroup(name), level: h.level, tally: h.tally}
}

// traceTally collects the numbers of the trace lines, one row a request.
type traceTally struct {
	mu       sync.Mutex
	rows     []map[string]float64
	outcomes map[string]int
}

func newTraceTally() *traceTally { return &traceTally{outcomes: map[string]int{}} }

func (t *traceTally) add(r slog.Record) {
	row := map[string]float64{}
	outcome := ""
	r.Attrs(func(a slog.Attr) bool {
		switch v := a.Value.Resolve(); v.Kind() {
		case slog.KindString:
			if a.Key == "outcome" {
				outcome = v.String()
				if len(outcome) > 80 {
					outcome = outcome[:80] + "..."
				}
			}
		case slog.KindFloat64:
			row[a.Key] = v.Float64()
		case slog.KindInt64:
			row[a.Key] = float64(v.Int64())
		}
		return true
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, row)
	t.outcomes[outcome]++
}

// print writes the breakdown: per attribute the mean, p50, p90, max and sum over requests.
func (t *traceTally) print(out io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintf(out, "\nsmall bulk requests, where the time went (%d requests, from the functions' trace lines):\n", len(t.rows))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "per request\tmean\tp50\tp90\tmax\tsum\t")
	var keys []string
	for _, row := range t.rows {
		for k := range row {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	order := []string{"total_ms", "resolve_ms", "read_ms", "commit_ms", "backoff_ms", "late_signups_ms", "round_trips", "attempts"}
	sort.SliceStable(keys, func(i, j int) bool {
		ri, rj := slices.Index(order, keys[i]), slices.Index(order, keys[j])
		if ri < 0 {
			ri = len(order)
		}
		if rj < 0 {
			rj = len(order)
		}
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		vs := make([]float64, len(t.rows)) // a refusal a request never met counts 0 for it
		for i, row := range t.rows {
			vs[i] = row[k]
		}
		slices.Sort(vs)
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		q := func(p float64) float64 { return vs[max(0, min(len(vs)-1, int(float64(len(vs))*p+0.5)-1))] }
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t\n", k, sum/float64(len(vs)), q(0.5), q(0.9), vs[len(vs)-1], sum)
	}
	tw.Flush()
	var outs []string
	for o, n := range t.outcomes {
		outs = append(outs, fmt.Sprintf("%s: %d", o, n))
	}
	sort.Strings(outs)
	fmt.Fprintf(out, "outcomes: %s\n", strings.Join(outs, ", "))
}
