package rollcall

import (
	"strings"
	"testing"
)

// FuzzSplitList: the identifier splitter never yields an empty or separator-bearing item,
// and it loses no non-separator character.
func FuzzSplitList(f *testing.F) {
	for _, s := range []string{"a@b.c,d e\nf", ",,,", "", " \t\r\n", "x", "a,,b  c\r\n\r\nd", "ü@ü.de,名前"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items := SplitList(s)
		var kept int
		for _, it := range items {
			if it == "" || strings.ContainsAny(it, ", \n\r\t\v\f") {
				t.Fatalf("item %q from %q", it, s)
			}
			kept += len(it)
		}
		// Separators are ASCII, so count bytes (invalid UTF-8 must survive untouched).
		other := 0
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(", \n\r\t\v\f", s[i]) < 0 {
				other++
			}
		}
		if kept != other {
			t.Fatalf("lost characters: %q -> %q", s, items)
		}
	})
}

// FuzzValidCourseKey: an accepted key has exactly the documented shape.
func FuzzValidCourseKey(f *testing.F) {
	for _, s := range []string{"course-v1:edX+DemoX+Demo_Course", "edX/DemoX/2014", "course-v1:a+b", "course-v1:a+b+c+d", "a/b", "", "course-v1:+++", "x/y/z/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidCourseKey(s) {
			return
		}
		parts := strings.Split(strings.TrimPrefix(s, "course-v1:"), "+")
		if !strings.HasPrefix(s, "course-v1:") {
			parts = strings.Split(s, "/")
		}
		if len(parts) != 3 {
			t.Fatalf("accepted %q with %d parts", s, len(parts))
		}
		for _, p := range parts {
			if p == "" || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-") != "" {
				t.Fatalf("accepted %q with part %q", s, p)
			}
		}
	})
}

// FuzzParseBulkRequest: any combination of field values either validates into a request
// that keeps the limits' inputs consistent, or fails with a ValidationError, never a panic.
func FuzzParseBulkRequest(f *testing.F) {
	f.Add("a@b.co,bob", "course-v1:A+B+C", "enroll", "true", "false", "c1", true)
	f.Add("", "", "", "", "", "", false)
	f.Add("x", "A/B/C,course-v1:A+B+C", "unenroll", "1", "0", "", false)
	f.Add("x", "bad key", "delete", "maybe", "TRUE", "c1,c2", true)
	f.Fuzz(func(t *testing.T, ids, courses, action, auto, email, cohorts string, withCohorts bool) {
		fl := Fields{"identifiers": {Present: true, Values: []string{ids}}, "courses": {Present: true, Values: []string{courses}},
			"action": {Present: true, Values: []string{action}}, "auto_enroll": {Present: true, Values: []string{auto}},
			"email_students": {Present: true, Values: []string{email}}}
		if withCohorts {
			fl["cohorts"] = Field{Present: true, Values: []string{cohorts}}
		}
		r, err := ParseBulkRequest(fl)
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(r.Identifiers) == 0 || len(r.Courses) == 0 || (r.Action != "enroll" && r.Action != "unenroll") {
			t.Fatalf("accepted an incomplete request: %+v", r)
		}
		if r.Cohorts != nil && len(r.Cohorts) != len(r.Courses) {
			t.Fatalf("cohorts %q for courses %q", r.Cohorts, r.Courses)
		}
		for _, c := range r.Courses {
			if !ValidCourseKey(c) {
				t.Fatalf("accepted course %q", c)
			}
		}
	})
}
