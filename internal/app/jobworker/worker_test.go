package jobworker

import (
	"os/exec"
	"strings"
	"testing"
)

// JobWorkerFunction sends no mail (MailerFunction sends job_finished from the job's final
// write), so its binary links no SES: the SES v2 client's package init and code would cost
// every cold start of the worker (make bench).
func TestWorkerLinksNoSES(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", "github.com/rollcall/rollcall/functions/job-worker").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/service/sesv2") || pkg == "github.com/rollcall/rollcall/internal/ses" {
			t.Errorf("the job worker links %s", pkg)
		}
	}
}
