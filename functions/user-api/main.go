// Command user-api is the Lambda of UserApiFunction in template.yaml: it only wires
// configuration, store, domain and handler (internal/app) and hands the handler to Lambda.
package main

import (
	_ "time/tzdata" // the time zone list describes zones by their offsets; Lambda's OS may have no zoneinfo

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/web"
)

func main() { app.Start("UserApiFunction", web.UserApiFunction) }
