package rollcall

import (
	"strings"
)

var (
	courseKeyV1     = lazyRegexp(`^course-v1:([A-Za-z0-9_.~-]+)\+([A-Za-z0-9_.~-]+)\+([A-Za-z0-9_.~-]+)$`)
	courseKeyLegacy = lazyRegexp(`^([A-Za-z0-9_.~-]+)/([A-Za-z0-9_.~-]+)/([A-Za-z0-9_.~-]+)$`)
)

// maxCourseKeyLen bounds a key so that it fits comfortably in DynamoDB keys and URLs.
const maxCourseKeyLen = 255

// ValidCourseKey reports whether s is a course key: course-v1:ORG+NUMBER+RUN or the legacy
// ORG/NUMBER/RUN, each part [A-Za-z0-9_.~-]+ (Open edX opaque-keys rules).
func ValidCourseKey(s string) bool {
	if len(s) == 0 || len(s) > maxCourseKeyLen {
		return false
	}
	if strings.HasPrefix(s, "course-v1:") {
		return courseKeyV1().MatchString(s)
	}
	return courseKeyLegacy().MatchString(s)
}
