// Command admin is the Lambda of AdminFunction in template.yaml: it only wires configuration,
// store, domain and handler (internal/app) and hands the handler to Lambda.
package main

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/web"
)

func main() { app.Start("AdminFunction", web.AdminFunction) }
