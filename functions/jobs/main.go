// Command jobs is the Lambda of JobsFunction in template.yaml: it only wires configuration,
// store, domain and handler (internal/app and its builder) and hands the handler to Lambda.
package main

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/jobs"
)

func main() { app.Start("JobsFunction", jobs.JobsFunction) }
