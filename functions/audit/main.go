// Command audit is the Lambda of AuditFunction in template.yaml: it only wires configuration,
// store, domain and handler (internal/app) and hands the handler to Lambda.
package main

import "github.com/rollcall/rollcall/internal/app"

func main() { app.Start("AuditFunction", app.AuditFunction) }
