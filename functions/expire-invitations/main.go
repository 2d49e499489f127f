// Command expire-invitations is the Lambda of ExpireInvitationsFunction in template.yaml: it
// only wires configuration, store, domain and handler (internal/app and its builder) and hands the handler to
// Lambda.
package main

import "github.com/rollcall/rollcall/internal/app"

func main() { app.Start("ExpireInvitationsFunction", app.ExpireInvitationsFunction) }
