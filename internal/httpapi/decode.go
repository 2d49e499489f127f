package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// mediaError is DRF's 415.
type mediaError struct{ mediaType string }

func (e *mediaError) Error() string {
	return fmt.Sprintf("Unsupported media type \"%s\" in request.", e.mediaType)
}

// parseError is a 400 {"detail": msg}, DRF's ParseError.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

// limitBody caps the body at 1 MiB (docs/api.md#bulk-enroll); reading past it fails with a 413.
func limitBody(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, bodyLimit(r))
}

// DecodeFields reads a JSON, urlencoded or multipart body into fields, keeping what each
// encoding can say (lists, booleans, repeated keys). A multipart file part counts as a value:
// staff can upload a roster file as "identifiers".
func DecodeFields(r *http.Request) (rollcall.Fields, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return decodeJSONFields(r.Body)
	case mt == "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(err)
		}
		return formFields(r.PostForm), nil
	case mt == "multipart/form-data":
		if err := r.ParseMultipartForm(rollcall.MaxBulkBodyBytes); err != nil {
			// Within the byte limit, "message too large" means too many parts: a 400.
			var mbe *http.MaxBytesError
			if errors.Is(err, multipart.ErrMessageTooLarge) && !errors.As(err, &mbe) {
				return nil, &parseError{msg: "Malformed request body: too many multipart parts (at most 1000)."}
			}
			return nil, bodyError(err)
		}
		f := formFields(r.MultipartForm.Value)
		for name, files := range r.MultipartForm.File {
			fd := f[name]
			fd.Present = true
			for _, fh := range files {
				file, err := fh.Open()
				if err != nil {
					return nil, bodyError(err)
				}
				b, err := io.ReadAll(io.LimitReader(file, rollcall.MaxBulkBodyBytes+1))
				file.Close()
				if err != nil {
					return nil, bodyError(err)
				}
				fd.Values = append(fd.Values, string(b))
			}
			f[name] = fd
		}
		return f, nil
	case ct == "":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			return rollcall.Fields{}, nil
		}
		return decodeJSONFields(strings.NewReader(string(b)))
	}
	return nil, &mediaError{mediaType: mt}
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || strings.Contains(err.Error(), "too large") {
		return &rollcall.TooLargeError{Detail: "Request body is larger than 1 MiB."}
	}
	return &parseError{msg: "Malformed request body: " + err.Error()}
}

func formFields(v map[string][]string) rollcall.Fields {
	f := rollcall.Fields{}
	for k, vals := range v {
		k = strings.TrimSuffix(k, "[]")
		fd := f[k]
		fd.Present = true
		fd.Values = append(fd.Values, vals...)
		f[k] = fd
	}
	return f
}

func decodeJSONFields(body io.Reader) (rollcall.Fields, error) {
	var raw any
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return rollcall.Fields{}, nil
		}
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, &parseError{msg: "JSON parse error - extra data after the JSON value"}
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, rollcall.NonFieldError(fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", jsonKind(raw)))
	}
	f := make(rollcall.Fields, len(obj))
	for k, v := range obj {
		fd := rollcall.Field{Present: true}
		switch x := v.(type) {
		case nil:
			fd.Present = false
		case string:
			fd.Values = []string{x}
		case json.Number:
			fd.Values = []string{x.String()}
		case bool:
			b := x
			fd.Bool = &b
		case []any:
			fd.List = true
			for _, el := range x {
				switch y := el.(type) {
				case string:
					fd.Values = append(fd.Values, y)
				case json.Number:
					fd.Values = append(fd.Values, y.String())
				default:
					fd.Invalid = true
				}
			}
		default:
			fd.Invalid = true
		}
		f[k] = fd
	}
	return f, nil
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &rollcall.TooLargeError{Detail: "Request body is larger than 1 MiB."}
	}
	return &parseError{msg: "JSON parse error - " + err.Error()}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case json.Number:
		return "int"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return "object"
}

// decodeJSON reads a JSON object body into v. Type mismatches become field errors.
func decodeJSON(r *http.Request, v any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return &mediaError{mediaType: mt}
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			field := ute.Field
			if field == "" {
				return rollcall.NonFieldError(fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", ute.Value))
			}
			if i := strings.IndexByte(field, '.'); i > 0 {
				field = field[:i]
			}
			return rollcall.FieldError(field, fmt.Sprintf("Expected %s but got %s.", ute.Type.String(), ute.Value))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return jsonError(err)
	}
	return nil
}
