package app

import (
	"net/http"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Retirements are the retirement use cases over the function's store. The pseudonyms and
// retirement ids are keyed with the stable id key, so they never change for one account.
func (d *Deps) Retirements() *rollcall.Retirements {
	return &rollcall.Retirements{Svc: d.Service, Store: d.Store, Salt: d.idKey,
		Participants: []rollcall.RetirementParticipant{d.Store}}
}

func init() {
	registry["UserApiFunction"] = HTTPFunction("UserApiFunction", false, true, func(d *Deps) map[string]http.HandlerFunc {
		return d.API().RetirementOps(d.Retirements())
	})
}
