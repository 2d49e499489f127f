package app

import (
	"maps"
	"net/http"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Retirements are the retirement use cases over the function's store. The pseudonyms and
// retirement ids are keyed with the stable id key, so they never change for one account.
func (d *Deps) Retirements() *rollcall.Retirements {
	return &rollcall.Retirements{Svc: d.Service, Store: d.Store, Salt: d.idKey,
		Participants: []rollcall.RetirementParticipant{d.Store}}
}

// Preferences are the preference use cases over the function's store.
func (d *Deps) Preferences() *rollcall.Preferences {
	return &rollcall.Preferences{Svc: d.Service, Store: d.Store}
}

// UserAPIOps are UserApiFunction's operations.
func (d *Deps) UserAPIOps() map[string]http.HandlerFunc {
	api := d.API()
	ops := api.RetirementOps(d.Retirements())
	maps.Copy(ops, api.PreferenceOps(d.Preferences()))
	maps.Copy(ops, api.OptInOps(&rollcall.OptIns{Svc: d.Service, Store: d.Store}))
	return ops
}

func init() {
	registry["UserApiFunction"] = HTTPFunction("UserApiFunction", false, true, func(d *Deps) map[string]http.HandlerFunc {
		return d.UserAPIOps()
	})
}
