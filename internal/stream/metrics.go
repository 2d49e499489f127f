package stream

import (
	"encoding/json"
	"io"
	"time"
)

// MetricsNamespace is the CloudWatch namespace of rollcall's embedded metrics.
const MetricsNamespace = "rollcall"

// writeEMF writes one CloudWatch embedded-metric-format line: the counts as metrics (unit
// Count) under MetricsNamespace with the dimension Function. In Lambda, a JSON line on stdout
// whose _aws member names metrics becomes those metrics; no API call is made.
func writeEMF(w io.Writer, function string, at time.Time, counts map[string]int) {
	if w == nil {
		return
	}
	names := []string{"MailSent", "MailFailed", "MailRejected"}
	defs := make([]map[string]string, 0, len(names))
	line := map[string]any{"Function": function}
	for _, n := range names {
		defs = append(defs, map[string]string{"Name": n, "Unit": "Count"})
		line[n] = counts[n]
	}
	line["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  MetricsNamespace,
			"Dimensions": [][]string{{"Function"}},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	_, _ = w.Write(append(b, '\n'))
}

// emit writes the invocation's mail metrics.
func (m *Mailer) emit(st MailStats) {
	fn := m.Function
	if fn == "" {
		fn = "MailerFunction"
	}
	writeEMF(m.Metrics, fn, time.Now(), map[string]int{"MailSent": st.Sent, "MailFailed": st.Failed, "MailRejected": st.Rejected})
}
