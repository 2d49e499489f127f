// Command invitations is the Lambda of InvitationsFunction in template.yaml: it only wires
// configuration, store, domain and handler (internal/app and its builder) and hands the handler to Lambda.
package main

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/web"
)

func main() { app.Start("InvitationsFunction", web.InvitationsFunction) }
