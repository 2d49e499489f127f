package app

import (
	"net/http"
)

func init() {
	registry["InvitationsFunction"] = HTTPFunction("InvitationsFunction", false, true, func(d *Deps) map[string]http.HandlerFunc { return d.API().InvitationOps() })
}
