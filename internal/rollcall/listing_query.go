package rollcall

import (
	"fmt"
	"strconv"
	"strings"
)

// integerPattern is what Django REST Framework's IntegerField accepts ("7", " 7 ", "7.0").
var integerPattern = lazyRegexp(`^[+-]?[0-9]+(\.0*)?$`)

// parseInteger parses a DRF integer; ok is false (and a message recorded) when s is none.
func parseInteger(field, s string, v *ValidationError) (n int, ok bool) {
	s = strings.TrimSpace(s)
	if !integerPattern().MatchString(s) {
		v.Add(field, "A valid integer is required.")
		return 0, false
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	n64, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // out of range: as large (or small) as it gets
		n64 = 1 << 62
		if strings.HasPrefix(s, "-") {
			n64 = -n64
		}
	}
	n64 = max(min(n64, 1<<40), -(1 << 40))
	return int(n64), true
}

// parsePageSize reads page_size: default DefaultPageSize, 1..MaxPageSize.
func parsePageSize(s string, v *ValidationError) int {
	if s == "" {
		return DefaultPageSize
	}
	n, ok := parseInteger("page_size", s, v)
	switch {
	case !ok:
	case n < 1:
		v.Add("page_size", "Ensure this value is greater than or equal to 1.")
	case n > MaxPageSize:
		v.Add("page_size", fmt.Sprintf("Ensure this value is less than or equal to %d.", MaxPageSize))
	default:
		return n
	}
	return DefaultPageSize
}

// parseDays reads days: a positive integer; ok is false when absent or invalid.
func parseDays(s string, v *ValidationError) (int, bool) {
	if strings.TrimSpace(s) == "" {
		return 0, false
	}
	n, ok := parseInteger("days", s, v)
	if !ok {
		return 0, false
	}
	if n < 1 {
		v.Add("days", "Ensure this value is greater than or equal to 1.")
		return 0, false
	}
	return min(n, maxDays), true
}

// stateAliases are Redu's state names (docs/api.md#listing), accepted by the state filter.
var stateAliases = map[string]State{
	"waiting": StateInvited, "redu_invited": StateInvited, "approved": StateActive, "rejected": StateDeclined,
}

// ParseStateFilter reads the state filter of the course list ("" = any state).
func ParseStateFilter(s string, v *ValidationError) State {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return ""
	case ValidState(s):
		return State(s)
	case stateAliases[s] != "":
		return stateAliases[s]
	}
	v.Add("state", `"`+s+`" is not a valid choice.`)
	return ""
}
