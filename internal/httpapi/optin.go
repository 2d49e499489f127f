package httpapi

import (
	"bufio"
	"encoding/csv"
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// OptInOps are the email opt-in operations of UserApiFunction (docs/api.md#email-opt-in).
func (a *API) OptInOps(o *rollcall.OptIns) map[string]http.HandlerFunc {
	h := &optInAPI{API: a, o: o}
	return map[string]http.HandlerFunc{
		"EmailOptIn":       a.authed(h.set),
		"EmailOptInReport": a.authed(h.report),
	}
}

type optInAPI struct {
	*API
	o *rollcall.OptIns
}

// set is POST preferences/email_opt_in/ (form or JSON: course_id, email_opt_in) -> 200.
func (h *optInAPI) set(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	f, err := DecodeFields(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	course, err := stringField(f, "course_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	var coursePtr *string
	if course != "" {
		coursePtr = &course
	}
	var optIn *bool
	if fd, ok := f["email_opt_in"]; ok && fd.Present {
		v := false
		switch {
		case fd.Bool != nil:
			v = *fd.Bool
		case len(fd.Values) == 1 && !fd.List:
			v = strings.EqualFold(strings.TrimSpace(fd.Values[0]), "true")
		}
		optIn = &v
	}
	if err := h.o.Set(r.Context(), actor, coursePtr, optIn); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// report is GET /api/user/v1/email_opt_in/?org=X (staff): text/csv.
func (h *optInAPI) report(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q := r.URL.Query()
	if len(q["org"]) > 1 {
		writeError(w, r, rollcall.FieldError("org", "Expected a single value."))
		return
	}
	org := q.Get("org")
	var cw *csv.Writer
	var buf *bufio.Writer
	start := func() {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="email_opt_in.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		buf = bufio.NewWriter(w)
		cw = csv.NewWriter(buf)
		_ = cw.Write([]string{"user_id", "username", "email", "full_name", "course_id", "is_opted_in_for_email", "preference_set_datetime"})
	}
	err := h.o.Report(r.Context(), actor, org, func(row rollcall.OptInRow) error {
		if cw == nil {
			start()
		}
		opted, at := "False", ""
		if row.OptIn != nil {
			if row.OptIn.OptedIn {
				opted = "True"
			}
			at = row.OptIn.SetAt.UTC().Format("2006-01-02 15:04:05")
		}
		return cw.Write([]string{"", row.Username, row.Email, "", row.CourseID, opted, at})
	})
	if err != nil && cw == nil {
		writeError(w, r, err)
		return
	}
	if cw == nil {
		start()
	}
	cw.Flush()
	_ = buf.Flush()
	if err != nil { // the header is out: the report ends early
		logger(r.Context()).ErrorContext(r.Context(), "email opt-in report cut short", "error", err.Error())
	}
}
