// Command mailer is the Lambda of MailerFunction in template.yaml: it only wires configuration,
// store, domain and handler (internal/app) and hands the handler to Lambda.
package main

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/mail"
)

func main() { app.Start("MailerFunction", mail.MailerFunction) }
