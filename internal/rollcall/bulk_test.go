package rollcall

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func strField(s ...string) Field { return Field{Present: true, Values: s} }
func boolField(b bool) Field     { return Field{Present: true, Bool: &b} }

func wantFieldErrors(t *testing.T, err error, want map[string][]string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a ValidationError", err)
	}
	if !reflect.DeepEqual(ve.Fields, want) {
		t.Fatalf("fields = %v, want %v", ve.Fields, want)
	}
}

func TestParseBulkRequestMissingFields(t *testing.T) {
	_, err := ParseBulkRequest(Fields{})
	wantFieldErrors(t, err, map[string][]string{
		"identifiers": {"This field is required."},
		"courses":     {"This field is required."},
		"action":      {"This field is required."},
	})
}

func TestParseBulkRequestMessages(t *testing.T) {
	base := func() Fields {
		return Fields{"identifiers": strField("a@example.com"), "courses": strField("course-v1:edX+Demo+2024"), "action": strField("enroll")}
	}
	cases := []struct {
		name   string
		modify func(Fields)
		want   map[string][]string
	}{
		{"bad action", func(f Fields) { f["action"] = strField("invalid-action") }, map[string][]string{"action": {`"invalid-action" is not a valid choice.`}}},
		{"bad course", func(f Fields) { f["courses"] = strField("course-v1:edX+Demo+2024,not a key") }, map[string][]string{"courses": {"Course key not valid: not a key"}}},
		{"cohorts with unenroll", func(f Fields) { f["action"] = strField("unenroll"); f["cohorts"] = strField("c1") }, map[string][]string{"non_field_errors": {"Cohorts can only be used for enrollments."}}},
		{"unequal cohorts", func(f Fields) { f["cohorts"] = strField("c1,c2") }, map[string][]string{"non_field_errors": {"If provided, the cohorts and courses should have equal number of items."}}},
		{"bad boolean", func(f Fields) { f["auto_enroll"] = strField("maybe") }, map[string][]string{"auto_enroll": {"Must be a valid boolean."}}},
		{"blank identifiers", func(f Fields) { f["identifiers"] = strField(" ,\n ") }, map[string][]string{"identifiers": {"This field may not be blank."}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := base()
			c.modify(f)
			_, err := ParseBulkRequest(f)
			wantFieldErrors(t, err, c.want)
		})
	}
}

func TestParseBulkRequestEncodings(t *testing.T) {
	for _, spelling := range []string{"true", "True", "TRUE", "1", "yes"} {
		r, err := ParseBulkRequest(Fields{"identifiers": strField("a@x.org b@x.org,\nc"), "courses": strField("course-v1:A+B+C, A/B/C"),
			"action": strField("enroll"), "auto_enroll": strField(spelling), "email_students": boolField(true), "cohorts": strField("x,y")})
		if err != nil {
			t.Fatal(err)
		}
		if !r.AutoEnroll || !r.EmailStudents {
			t.Fatalf("%s: booleans = %v %v", spelling, r.AutoEnroll, r.EmailStudents)
		}
		if want := []string{"a@x.org", "b@x.org", "c"}; !reflect.DeepEqual(r.Identifiers, want) {
			t.Fatalf("identifiers = %q", r.Identifiers)
		}
		if want := []string{"course-v1:A+B+C", "A/B/C"}; !reflect.DeepEqual(r.Courses, want) {
			t.Fatalf("courses = %q", r.Courses)
		}
		if want := []string{"x", "y"}; !reflect.DeepEqual(r.Cohorts, want) {
			t.Fatalf("cohorts = %q", r.Cohorts)
		}
	}
	for _, spelling := range []string{"false", "False", "0", ""} {
		r, err := ParseBulkRequest(Fields{"identifiers": Field{Present: true, List: true, Values: []string{"a", "b"}},
			"courses": Field{Present: true, List: true, Values: []string{"course-v1:A+B+C"}}, "action": strField("unenroll"), "auto_enroll": strField(spelling)})
		if err != nil || r.AutoEnroll {
			t.Fatalf("%q: %v %v", spelling, err, r)
		}
	}
}

func TestValidCourseKey(t *testing.T) {
	good := []string{"course-v1:edX+DemoX+Demo_Course", "course-v1:a.b+c~d+e-f", "edX/DemoX/2014"}
	bad := []string{"", "course-v1:edX+DemoX", "course-v1:edX+Demo X+1", "edX/DemoX", "edX/Demo/X/Y", "course-v1:+a+b", "<script>"}
	for _, k := range good {
		if !ValidCourseKey(k) {
			t.Errorf("%q should be valid", k)
		}
	}
	for _, k := range bad {
		if ValidCourseKey(k) {
			t.Errorf("%q should be invalid", k)
		}
	}
}

func TestValidEmail(t *testing.T) {
	good := []string{"bob@example.com", "a.b+c@sub.example.org", "x_y@e.co"}
	bad := []string{"percivaloctavius@", "percivaloctavius", "@example.com", "a@b", "a b@example.com", "a@@example.com", "a@example..com", "a.@example.com"}
	for _, e := range good {
		if !ValidEmail(e) {
			t.Errorf("%q should be valid", e)
		}
	}
	for _, e := range bad {
		if ValidEmail(e) {
			t.Errorf("%q should be invalid", e)
		}
	}
}

func TestBulkResultJSON(t *testing.T) {
	c := "cohort1"
	cases := []struct {
		r    BulkResult
		want string
	}{
		{BulkResult{Identifier: "x", InvalidIdentifier: true}, `{"identifier":"x","invalidIdentifier":true}`},
		{BulkResult{Identifier: "x", Error: true}, `{"identifier":"x","error":true}`},
		{BulkResult{Identifier: "x", Before: Snapshot{User: true}, After: Snapshot{User: true, Enrollment: true}},
			`{"identifier":"x","before":{"allowed":false,"auto_enroll":false,"enrollment":false,"user":true},"after":{"allowed":false,"auto_enroll":false,"enrollment":true,"user":true}}`},
		{BulkResult{Identifier: "x", WithCohort: true, After: Snapshot{Cohort: &c}},
			`{"identifier":"x","before":{"allowed":false,"auto_enroll":false,"cohort":null,"enrollment":false,"user":false},"after":{"allowed":false,"auto_enroll":false,"cohort":"cohort1","enrollment":false,"user":false}}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.r)
		if err != nil || string(b) != tc.want {
			t.Errorf("got %s (%v), want %s", b, err, tc.want)
		}
	}
}

// CommitLimit can only lower the optimistic-commit bound: the store promises a commit of
// SmallRequestItems, no more.
func TestCommitLimit(t *testing.T) {
	req := func(people, courses int) *BulkRequest {
		r := &BulkRequest{}
		for i := range people {
			r.Identifiers = append(r.Identifiers, fmt.Sprintf("p%d@example.com", i))
		}
		for i := range courses {
			r.Courses = append(r.Courses, fmt.Sprintf("course-v1:O+C%d+R", i))
		}
		return r
	}
	for _, tc := range []struct {
		limit, people, courses int
		small                  bool
	}{
		{0, 4, 5, true}, {0, 5, 5, false}, {0, 11, 2, true}, {0, 12, 2, false},
		{100, 5, 5, false}, {100, 12, 2, false}, // capped at SmallRequestItems
		{1, 1, 1, false}, {3, 1, 1, true}, {3, 2, 1, true}, {3, 3, 1, false},
	} {
		s := &Service{CommitLimit: tc.limit}
		if got := s.fitsOneCommit(req(tc.people, tc.courses)); got != tc.small {
			t.Errorf("limit %d, %d x %d: small = %v, want %v", tc.limit, tc.people, tc.courses, got, tc.small)
		}
	}
}
