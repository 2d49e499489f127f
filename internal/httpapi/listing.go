package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// ListOps are the operations of ListEnrollmentsFunction, by template.yaml event name.
func (a *API) ListOps() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"So2ListEnrollments":    a.authed(a.so2List),
		"ListCourseEnrollments": a.authed(a.listCourseEnrollments),
		"ListUserEnrollments":   a.authed(a.listUserEnrollments),
		"GetEnrollment":         a.authed(a.getEnrollment),
		"EnrollmentHistory":     a.authed(a.enrollmentHistory),
	}
}

// So2Enrollment is an item of the so2 list: exactly these keys.
type So2Enrollment struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	CourseID string `json:"course_id"`
	IsActive bool   `json:"is_active"`
	Mode     string `json:"mode"`
	Created  string `json:"created"` // YYYY-MM-DD HH:MM, UTC
}

// So2CreatedLayout is the so2 list's time format.
const So2CreatedLayout = "2006-01-02 15:04"

// so2List is GET /api/so2/v1/enrollments.
func (a *API) so2List(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q, qerr := parseQuery(r, "course_id", "username", "email", "days", "page_size", "cursor")
	if qerr != nil {
		writeError(w, r, qerr)
		return
	}
	res, err := a.Svc.ListSo2Enrollments(r.Context(), actor, rollcall.So2Query{
		CourseID: courseParam(listParam(q, "course_id")), Username: listParam(q, "username"), Email: listParam(q, "email"),
		Days: listParam(q, "days"), PageSize: listParam(q, "page_size"), Cursor: listParam(q, "cursor"),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	items := make([]So2Enrollment, len(res.Items))
	for i, e := range res.Items {
		mode := e.Mode
		if mode == "" {
			mode = rollcall.DefaultMode
		}
		items[i] = So2Enrollment{Username: e.Username, Email: e.Email, CourseID: e.CourseID,
			IsActive: e.IsActive(), Mode: mode, Created: e.CreatedAt.UTC().Format(So2CreatedLayout)}
	}
	a.writeList(w, r, res.Next, items)
}

// listCourseEnrollments is GET /api/courses/{course_id}/enrollments[?state=].
func (a *API) listCourseEnrollments(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q, qerr := parseQuery(r, "state", "page_size", "cursor")
	if qerr != nil {
		writeError(w, r, qerr)
		return
	}
	res, err := a.Svc.ListCourseEnrollments(r.Context(), actor, r.PathValue("course_id"), rollcall.CourseListQuery{
		State: listParam(q, "state"), PageSize: listParam(q, "page_size"), Cursor: listParam(q, "cursor"),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.writeList(w, r, res.Next, a.resources(r, res.Items))
}

// listUserEnrollments is GET /api/users/{username}/enrollments[?courses_ids[]=A&...].
func (a *API) listUserEnrollments(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	q, qerr := parseQuery(r, "page_size", "cursor")
	if qerr != nil {
		writeError(w, r, qerr)
		return
	}
	var courses []string
	for _, k := range []string{"courses_ids[]", "courses_ids"} {
		for _, v := range q[k] {
			for _, c := range rollcall.SplitCommaList(v) {
				courses = append(courses, courseParam(c))
			}
		}
	}
	res, err := a.Svc.ListUserEnrollments(r.Context(), actor, r.PathValue("username"), rollcall.UserListQuery{
		CoursesIDs: courses, PageSize: listParam(q, "page_size"), Cursor: listParam(q, "cursor"),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.writeList(w, r, res.Next, a.resources(r, res.Items))
}

// getEnrollment is GET /api/enrollments/{id}.
func (a *API) getEnrollment(w http.ResponseWriter, r *http.Request, actor rollcall.Actor) {
	e, err := a.Svc.GetEnrollment(r.Context(), actor, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.Resource(r, e, a.Svc.Clock()))
}

func (a *API) resources(r *http.Request, es []*rollcall.Enrollment) []EnrollmentResource {
	now := a.Svc.Clock()
	out := make([]EnrollmentResource, len(es))
	for i, e := range es {
		out[i] = a.Resource(r, e, now)
	}
	return out
}

// writeList writes a list page: the body is a plain JSON array; when more remain, a
// Link header (RFC 8288) points at the next page: this URL with the new cursor.
func (a *API) writeList(w http.ResponseWriter, r *http.Request, next string, items any) {
	if next != "" {
		w.Header().Set("Link", "<"+a.NextURL(r, next)+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, items)
}

// NextURL is the absolute URL of the page that cursor starts: the request's path and query
// with cursor replaced.
func (a *API) NextURL(r *http.Request, cursor string) string {
	q := r.URL.Query()
	q.Set("cursor", cursor)
	if c := listParam(q, "course_id"); c != "" {
		q.Set("course_id", courseParam(c)) // so that a '+' goes out as %2B
	}
	return a.baseURL(r) + r.URL.EscapedPath() + "?" + q.Encode()
}

// listParam is a query parameter ("" when absent); repeated, the last one counts (Django's
// QueryDict.get).
func listParam(q url.Values, name string) string {
	vs := q[name]
	if len(vs) == 0 {
		return ""
	}
	return strings.TrimSpace(vs[len(vs)-1])
}

// courseParam undoes a common client slip: a course key sent unencoded in a query string
// (course-v1:Org+Num+Run) arrives with its '+' decoded as spaces. Keys never contain
// spaces, so when restoring the '+' gives a valid key, that key was meant.
func courseParam(s string) string {
	if strings.Contains(s, " ") {
		if k := strings.ReplaceAll(s, " ", "+"); rollcall.ValidCourseKey(k) {
			return k
		}
	}
	return s
}

// parseQuery reads the query string strictly: a pair that does not decode is a 400 naming its
// parameter (rather than silently dropped, which would widen a filtered list), and so is a
// parameter of singles given more than once.
func parseQuery(r *http.Request, singles ...string) (url.Values, error) {
	q := url.Values{}
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		value, verr := url.QueryUnescape(rawValue)
		if kerr != nil || verr != nil || strings.Contains(pair, ";") {
			field := key
			if kerr != nil || field == "" {
				field = "query"
			}
			return nil, rollcall.FieldError(field, "Not a valid query string value.")
		}
		q[key] = append(q[key], value)
	}
	for _, name := range singles {
		if len(q[name]) > 1 {
			return nil, rollcall.FieldError(name, "Expected a single value, not a list.")
		}
	}
	return q, nil
}
