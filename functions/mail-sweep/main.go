// Command mail-sweep is the Lambda of MailSweepFunction in template.yaml: it only wires
// configuration, store, domain and handler (internal/app and its builder) and hands the handler to Lambda.
package main

import (
	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/mail"
)

func main() { app.Start("MailSweepFunction", mail.MailSweepFunction) }
