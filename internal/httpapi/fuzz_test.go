package httpapi

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// FuzzDecodeFields: whatever the body and content type, decoding either yields fields or an
// error that maps to a 4xx, never a panic or a 5xx.
func FuzzDecodeFields(f *testing.F) {
	f.Add("application/json", `{"identifiers": ["a", "b"], "courses": "course-v1:A+B+C", "action": "enroll", "auto_enroll": true}`)
	f.Add("application/json", `[1,2]`)
	f.Add("application/json", `{"identifiers": {"x": 1}, "courses": [null, 1.5]}`)
	f.Add("application/json", `{"a": `)
	f.Add("application/x-www-form-urlencoded", "identifiers=a%40b.c&identifiers=d&courses[]=x&action=enroll")
	f.Add("application/x-www-form-urlencoded", "%zz=1")
	f.Add("multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"identifiers\"\r\n\r\na,b\r\n--X--\r\n")
	f.Add("multipart/form-data", "garbage")
	f.Add("", "")
	f.Add("text/plain", "x")
	f.Fuzz(func(t *testing.T, ctype, body string) {
		req := httptest.NewRequest("POST", "/api/bulk_enroll/v1/bulk_enroll/", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		fields, err := DecodeFields(req)
		if err != nil {
			status, _ := errorResponse(err)
			if status < 400 || status >= 500 {
				t.Fatalf("decode error %v maps to %d", err, status)
			}
			return
		}
		_, err = rollcall.ParseBulkRequest(fields)
		var ve *rollcall.ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("validation returned %T", err)
		}
	})
}
