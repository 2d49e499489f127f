package emf

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestEmitWritesEmbeddedMetricFormat(t *testing.T) {
	var buf bytes.Buffer
	prev := SetOutput(&buf)
	defer SetOutput(prev)
	Emit("BulkEnrollFunction", map[string]float64{"EnrollmentsChanged": 3, "EnrollmentsUnchanged": 0})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if line["EnrollmentsChanged"] != 3.0 || line["EnrollmentsUnchanged"] != 0.0 || line["Function"] != "BulkEnrollFunction" {
		t.Fatalf("values: %v", line)
	}
	aws := line["_aws"].(map[string]any)
	cwm := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if cwm["Namespace"] != "rollcall" || len(cwm["Metrics"].([]any)) != 2 {
		t.Fatalf("directive: %v", cwm)
	}
	if _, ok := aws["Timestamp"].(float64); !ok {
		t.Fatal("no timestamp")
	}
}
