// Package functions is the table of rollcall's Lambda functions by logical id in
// template.yaml: the local stack, make invoke and the tests build any function through it.
// A deployed binary never imports it: functions/<name>/main.go names its own builder, so that
// it links only what that function uses.
package functions

import (
	"context"
	"fmt"
	"sort"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/mail"
	"github.com/rollcall/rollcall/internal/app/web"
)

// Table maps each function of template.yaml to its builder.
func Table() map[string]app.Builder {
	return map[string]app.Builder{
		"BulkEnrollFunction":        web.BulkEnrollFunction,
		"AdminFunction":             web.AdminFunction,
		"ListEnrollmentsFunction":   web.ListEnrollmentsFunction,
		"InvitationsFunction":       web.InvitationsFunction,
		"MailerFunction":            mail.MailerFunction,
		"MailSweepFunction":         mail.MailSweepFunction,
		"ExpireInvitationsFunction": app.ExpireInvitationsFunction,
		"AuditFunction":             app.AuditFunction,
	}
}

// Handler builds the handler of the function with this logical id.
func Handler(ctx context.Context, logicalID string, cfg app.Config) (any, error) {
	build, ok := Table()[logicalID]
	if !ok {
		return nil, fmt.Errorf("app: no function %q", logicalID)
	}
	return build(ctx, cfg)
}

// LogicalIDs lists the functions of the table, sorted.
func LogicalIDs() []string {
	t := Table()
	ids := make([]string, 0, len(t))
	for id := range t {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
