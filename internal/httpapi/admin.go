package httpapi

import (
	"net/http"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// AdminOps are the operations of AdminFunction, by template.yaml event name.
func (a *API) AdminOps() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"PutCourse":  a.authed(a.putCourse),
		"GetCourse":  a.authed(a.getCourse),
		"CreateUser": a.authed(a.createUser),
		"GetUser":    a.authed(a.getUser),
	}
}

func (a *API) putCourse(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if err := actor.RequireStaff(); err != nil { // before the body is read
		writeError(w, r, err)
		return
	}
	limitBody(w, r)
	var in rollcall.CourseInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	c, created, err := a.Svc.PutCourse(r.Context(), actor, r.PathValue("course_id"), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
}

func (a *API) getCourse(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	c, err := a.Svc.GetCourse(r.Context(), actor, r.PathValue("course_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	if err := actor.RequireStaff(); err != nil { // before the body is read
		writeError(w, r, err)
		return
	}
	limitBody(w, r)
	var in rollcall.UserInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	u, err := a.Svc.CreateUser(r.Context(), actor, in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	u, err := a.Svc.GetUser(r.Context(), actor, r.PathValue("username"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
