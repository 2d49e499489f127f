package rollcall

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseRosterCanvas(t *testing.T) {
	file := "\ufeffCourse_ID,user_id,role,status,section_id,extra\r\n" +
		"course-v1:A+B+C,alice,student,active,s1,x\r\n" +
		"\r\n" +
		`"course-v1:A+B+C","bob@example.com, jr","STUDENT","deleted","",""` + "\r\n" +
		"course-v1:A+B+C,carol,teacher,active,,\r\n" +
		"course-v1:A+B+C,dave,student,pending,,\r\n" +
		"not a key,erin,student,active,,\r\n" +
		"course-v1:A+B+C,frank,student,completed,s2,\r\n"
	rows, err := ParseRoster(JobFormatCanvas, strings.NewReader(file), RowDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	want := []JobRow{
		{Row: 2, CourseID: "course-v1:A+B+C", Identifier: "alice", Action: "enroll", Cohort: "s1"},
		{Row: 4, CourseID: "course-v1:A+B+C", Identifier: "bob@example.com, jr", Action: "unenroll"},
		{Row: 5, CourseID: "course-v1:A+B+C", Identifier: "carol", Action: "enroll", Err: `Role "teacher" is not supported: only student enrollments are imported.`},
		{Row: 6, CourseID: "course-v1:A+B+C", Identifier: "dave", Err: `"pending" is not a valid status (active, deleted, inactive, completed).`},
		{Row: 7, CourseID: "not a key", Identifier: "erin", Action: "enroll", Err: "Course key not valid: not a key"},
		{Row: 8, CourseID: "course-v1:A+B+C", Identifier: "frank", Action: "unenroll", Cohort: "s2", Err: "Cohorts can only be used for enrollments."},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows:\n got %+v\nwant %+v", rows, want)
	}
}

func TestParseRosterOneRosterAndIdentifiers(t *testing.T) {
	rows, err := ParseRoster(JobFormatOneRoster, strings.NewReader(
		"sourcedId,classSourcedId,userSourcedId,role,status\nx,course-v1:A+B+C,alice,student,\ny,course-v1:A+B+C,bob,student,tobedeleted\nz,course-v1:A+B+C,carol,teacher,active\n"), RowDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Action != "enroll" || rows[1].Action != "unenroll" || rows[2].Err == "" {
		t.Errorf("oneroster rows = %+v", rows)
	}
	// Without course_id, every identifier goes to each of the job's courses.
	rows, err = ParseRoster(JobFormatIdentifiers, strings.NewReader("email,cohort\na@example.com,c1\nb@example.com,\n"),
		RowDefaults{Courses: []string{"course-v1:A+B+C", "course-v1:D+E+F"}, Action: "enroll"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[1].CourseID != "course-v1:D+E+F" || rows[1].Row != 2 || rows[2].Row != 3 || rows[0].Cohort != "c1" {
		t.Errorf("identifiers rows = %+v", rows)
	}
}

func TestParseRosterColumnErrors(t *testing.T) {
	for _, c := range []struct{ format, file, field, msg string }{
		{JobFormatCanvas, "course_id,status\n", "file", "Missing required column: user_id."},
		{JobFormatCanvas, "user_id\n", "file", "Missing required column: course_id."},
		{JobFormatOneRoster, "classSourcedId,userSourcedId\n", "file", "Missing required column: role."},
		{JobFormatIdentifiers, "course_id\n", "file", "Missing required column: identifier."},
		{JobFormatIdentifiers, "identifier\nx\n", "courses", "This field is required when the file has no course_id column."},
		{JobFormatCanvas, "", "file", "The file is empty: a header row is required."},
		{"xlsx", "a\n", "format", `"xlsx" is not a valid choice.`},
	} {
		_, err := ParseRoster(c.format, strings.NewReader(c.file), RowDefaults{})
		var ve *ValidationError
		if !errors.As(err, &ve) || fmt.Sprint(ve.Fields[c.field]) != fmt.Sprint([]string{c.msg}) {
			t.Errorf("%s %q: %v, want %s: %s", c.format, c.file, err, c.field, c.msg)
		}
	}
}

// A broken quote is a row result with its line, not a 400, and ends the file there.
func TestParseRosterBadCSVRow(t *testing.T) {
	rows, err := ParseRoster(JobFormatCanvas, strings.NewReader("course_id,user_id,status\ncourse-v1:A+B+C,a,active\ncourse-v1:A+B+C,\"b,active\n"), RowDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Row != 3 || !strings.HasPrefix(rows[1].Err, "Not valid CSV") {
		t.Errorf("rows = %+v", rows)
	}
}

func TestSplitJobAndChunkMessages(t *testing.T) {
	rows := make([]JobRow, 1234)
	for i := range rows {
		rows[i] = JobRow{Row: i + 2, CourseID: "course-v1:A+B+C", Identifier: fmt.Sprintf("u%d@example.com", i), Action: "enroll"}
	}
	chunks := SplitJob("0123456789abcdef0123456789abcdef", rows)
	// 50 first (it runs alone, so the job shows progress soon), then 500s.
	if len(chunks) != 4 || len(chunks[0].Rows) != FirstChunkRows || len(chunks[1].Rows) != ChunkRows ||
		len(chunks[3].Rows) != 184 || chunks[3].Index != 3 || chunks[3].Rows[0].Row != 1052 {
		t.Fatalf("chunks: %d", len(chunks))
	}
	if chunks[0].SendDelay() != 0 || chunks[1].SendDelay() != FirstChunkLead {
		t.Errorf("delays: %v %v", chunks[0].SendDelay(), chunks[1].SendDelay())
	}
	// Long rows close a chunk by size, so a message stays under SQS's 256 KiB.
	long := make([]JobRow, 500)
	for i := range long {
		long[i] = JobRow{Row: i, CourseID: "course-v1:" + strings.Repeat("A", 200) + "+B+C", Identifier: strings.Repeat("x", 240) + "@e.com", Action: "enroll"}
	}
	for _, c := range SplitJob("0123456789abcdef0123456789abcdef", long) {
		body, err := EncodeChunk(c)
		if err != nil || len(body) > 256<<10 {
			t.Fatalf("chunk %d: %d bytes, %v", c.Index, len(body), err)
		}
		back, err := DecodeChunk(body)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip: %v", err)
		}
	}
	if _, err := DecodeChunk(`{"job_id":"../x","chunk":0,"rows":[]}`); err == nil {
		t.Error("a bad job id decoded")
	}
}
