// Command job-worker is the Lambda of JobWorkerFunction in template.yaml: it only wires
// configuration, store, domain and handler (internal/app and its builder) and hands the
// handler to Lambda.
package main

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/jobworker"
)

func main() { app.Start("JobWorkerFunction", jobworker.JobWorkerFunction) }
