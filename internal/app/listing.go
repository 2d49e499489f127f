package app

import "net/http"

func init() {
	registry["ListEnrollmentsFunction"] = HTTPFunction("ListEnrollmentsFunction", true, true, func(d *Deps) map[string]http.HandlerFunc { return d.API().ListOps() })
}
