package rollcall

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Roster files: the three CSV formats a job accepts (docs/api.md#roster-jobs). Each has a
// header row; unknown columns are ignored; a missing required column is a 400 on the field
// "file"; a bad row becomes a row result with its row number, never a 400.

// Job formats.
const (
	JobFormatFields      = "fields" // the bulk enroll fields, no file
	JobFormatIdentifiers = "identifiers"
	JobFormatCanvas      = "canvas"
	JobFormatOneRoster   = "oneroster"
)

// MaxJobRows bounds a job.
const MaxJobRows = 1_000_000

// JobRow is one identifier x course pair of a job. Row is its line number in the file (the
// header is line 1), or its position among the pairs of a job given as fields. Err, when not
// empty, is why the row cannot run; it becomes the row's result.
type JobRow struct {
	Row        int
	CourseID   string
	Identifier string
	Action     string
	Cohort     string
	Err        string
}

// RowDefaults are what a file's rows take when a column is absent or empty: the job's
// courses (identifiers format without course_id) and action.
type RowDefaults struct {
	Courses []string
	Action  string
}

// ParseRoster reads a roster file of a format into rows. The error is a *ValidationError
// (field "file" or "format") or a *TooLargeError.
func ParseRoster(format string, r io.Reader, d RowDefaults) ([]JobRow, error) {
	br := bufio.NewReader(r)
	// A UTF-8 byte order mark (spreadsheets write one) is not part of the first column's name.
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // short and long rows are row errors, not a failed file
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, FieldError("file", "The file is empty: a header row is required.")
	}
	if err != nil {
		return nil, FieldError("file", "The header row is not valid CSV: "+csvMessage(err))
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := cols[h]; !dup {
			cols[h] = i
		}
	}
	col := func(names ...string) int {
		for _, n := range names {
			if i, ok := cols[strings.ToLower(n)]; ok {
				return i
			}
		}
		return -1
	}
	var need []string
	var rowOf func(rec []string, row int) []JobRow
	get := func(rec []string, i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	switch format {
	case JobFormatIdentifiers:
		ident, course, cohort, action := col("identifier", "email", "username"), col("course_id"), col("cohort"), col("action")
		if ident < 0 {
			need = append(need, "identifier")
		}
		if course < 0 && len(d.Courses) == 0 {
			// Without the column the job's courses apply; without either, nothing says where.
			return nil, FieldError("courses", "This field is required when the file has no course_id column.")
		}
		rowOf = func(rec []string, row int) []JobRow {
			r := JobRow{Row: row, Identifier: get(rec, ident), Cohort: get(rec, cohort), Action: strings.ToLower(get(rec, action))}
			if r.Action == "" {
				r.Action = d.Action
			} else if r.Action != "enroll" && r.Action != "unenroll" {
				r.Err = fmt.Sprintf("%q is not a valid action.", r.Action)
			}
			if course >= 0 && get(rec, course) != "" {
				r.CourseID = get(rec, course)
				return []JobRow{r}
			}
			out := make([]JobRow, 0, len(d.Courses))
			for _, c := range d.Courses {
				rc := r
				rc.CourseID = c
				out = append(out, rc)
			}
			return out
		}
	case JobFormatCanvas:
		course, user, status, section, role := col("course_id"), col("user_id"), col("status"), col("section_id"), col("role")
		for name, i := range map[string]int{"course_id": course, "user_id": user, "status": status} {
			if i < 0 {
				need = append(need, name)
			}
		}
		rowOf = func(rec []string, row int) []JobRow {
			r := JobRow{Row: row, CourseID: get(rec, course), Identifier: get(rec, user), Cohort: get(rec, section)}
			switch st := strings.ToLower(get(rec, status)); st {
			case "active":
				r.Action = "enroll"
			case "deleted", "inactive", "completed":
				r.Action = "unenroll"
			default:
				r.Err = fmt.Sprintf("%q is not a valid status (active, deleted, inactive, completed).", st)
			}
			if rl := strings.ToLower(get(rec, role)); rl != "" && rl != "student" && r.Err == "" {
				r.Err = fmt.Sprintf("Role %q is not supported: only student enrollments are imported.", rl)
			}
			return []JobRow{r}
		}
	case JobFormatOneRoster:
		course, user, status, role := col("classSourcedId"), col("userSourcedId"), col("status"), col("role")
		for name, i := range map[string]int{"classSourcedId": course, "userSourcedId": user, "role": role} {
			if i < 0 {
				need = append(need, name)
			}
		}
		rowOf = func(rec []string, row int) []JobRow {
			r := JobRow{Row: row, CourseID: get(rec, course), Identifier: get(rec, user)}
			switch st := strings.ToLower(get(rec, status)); st {
			case "", "active":
				r.Action = "enroll"
			case "tobedeleted":
				r.Action = "unenroll"
			default:
				r.Err = fmt.Sprintf("%q is not a valid status (active, tobedeleted).", get(rec, status))
			}
			if rl := strings.ToLower(get(rec, role)); rl != "student" && r.Err == "" {
				r.Err = fmt.Sprintf("Role %q is not supported: only student enrollments are imported.", get(rec, role))
			}
			return []JobRow{r}
		}
	default:
		return nil, FieldError("format", fmt.Sprintf("%q is not a valid choice.", format))
	}
	if len(need) > 0 {
		sortByHeaderOrder(need, format)
		return nil, FieldError("file", "Missing required column: "+need[0]+".")
	}

	var rows []JobRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, FieldError("file", "The file could not be read: "+err.Error())
			}
			// A broken quote swallows the rest of the file into one field: report that row and
			// stop, as nothing after it can be trusted to be the row it looks like.
			rows = append(rows, JobRow{Row: pe.StartLine, Err: "Not valid CSV: " + csvMessage(err)})
			if pe.Err == csv.ErrQuote || pe.Err == csv.ErrBareQuote {
				break
			}
			continue
		}
		if blank(rec) {
			continue
		}
		for _, r := range rowOf(rec, line) {
			if r.Err == "" {
				r.Err = checkRow(r)
			}
			rows = append(rows, r)
		}
		if len(rows) > MaxJobRows {
			return nil, &TooLargeError{Detail: fmt.Sprintf("A job may have at most %d rows.", MaxJobRows)}
		}
	}
	return rows, nil
}

// checkRow finds what would make a well-formed row fail as a whole in bulk enroll (the
// identifier itself is judged by bulk enroll: an invalid one is an invalidIdentifier).
func checkRow(r JobRow) string {
	switch {
	case r.CourseID == "":
		return "This row has no course."
	case !ValidCourseKey(r.CourseID):
		return "Course key not valid: " + r.CourseID
	case r.Identifier == "":
		return "This row has no identifier."
	case HasControl(r.Cohort):
		return "The cohort contains control characters."
	case r.Cohort != "" && r.Action == "unenroll":
		return "Cohorts can only be used for enrollments."
	}
	return ""
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvMessage(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// sortByHeaderOrder orders missing column names as the format lists them, so the error names
// the first one a reader of the format's documentation expects.
func sortByHeaderOrder(names []string, format string) {
	order := map[string][]string{
		JobFormatCanvas:    {"course_id", "user_id", "status"},
		JobFormatOneRoster: {"classSourcedId", "userSourcedId", "role"},
	}[format]
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && rank[names[j]] < rank[names[j-1]]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}
