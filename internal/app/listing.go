package app

import "net/http"

func init() {
	registry["ListEnrollmentsFunction"] = HTTPFunction("ListEnrollmentsFunction", func(d *Deps) map[string]http.HandlerFunc { return d.API().ListOps() })
}
