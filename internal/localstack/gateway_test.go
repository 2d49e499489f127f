package localstack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

const gatewayTemplate = `
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        GetCourse: {Type: HttpApi, Properties: {Method: GET, Path: '/api/courses/{course_id}'}}
        Special: {Type: HttpApi, Properties: {Method: GET, Path: /api/courses/special}}
        Bulk: {Type: HttpApi, Properties: {Method: POST, Path: /api/bulk}}
        Files: {Type: HttpApi, Properties: {Method: ANY, Path: '/files/{proxy+}'}}
        FilesGet: {Type: HttpApi, Properties: {Method: GET, Path: '/files/{name}'}}
  Raw:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Raw: {Type: HttpApi, Properties: {Method: GET, Path: /raw}}
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Err: {Type: HttpApi, Properties: {Method: GET, Path: /err}}
  Panicking:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Panic: {Type: HttpApi, Properties: {Method: GET, Path: /panic}}
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 1
      Events:
        Slow: {Type: HttpApi, Properties: {Method: GET, Path: /slow}}
  Missing:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Missing: {Type: HttpApi, Properties: {Method: DELETE, Path: '/api/courses/{course_id}'}}
`

// echo returns the event it got as the body, plus headers, cookies and a status from the query.
func echo(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	b, _ := json.Marshal(req)
	resp := events.APIGatewayV2HTTPResponse{
		StatusCode:        201,
		Headers:           map[string]string{"Content-Type": "application/json", "X-One": "1"},
		MultiValueHeaders: map[string][]string{"X-Multi": {"a", "b"}},
		Cookies:           []string{"s=1; Path=/", "t=2"},
		Body:              string(b),
	}
	if req.QueryStringParameters["binary"] == "1" {
		resp.Body = base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})
		resp.IsBase64Encoded = true
		resp.Headers["Content-Type"] = "application/octet-stream"
	}
	return resp, nil
}

func newGateway(t *testing.T, builds map[string]int) *httptest.Server {
	t.Helper()
	tpl, err := samtemplate.Parse([]byte(gatewayTemplate))
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(_ context.Context, id string) (any, error) {
		if builds != nil {
			builds[id]++
		}
		switch id {
		case "Echo":
			return echo, nil
		case "Raw":
			return func(context.Context, json.RawMessage) (map[string]any, error) {
				return map[string]any{"hello": "world"}, nil
			}, nil
		case "Failing":
			return func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
			}, nil
		case "Panicking":
			return func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				panic("kaboom")
			}, nil
		case "Slow":
			return func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
				}
				return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
			}, nil
		}
		return nil, fmt.Errorf("no builder for %s", id)
	}
	gw, err := localstack.NewGateway(tpl, localstack.NewInvoker(tpl, lookup, nil), localstack.GatewayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestGatewayEvent(t *testing.T) {
	srv := newGateway(t, nil)
	req, _ := http.NewRequest("GET", srv.URL+"/api/courses/course-v1%3AORG%2BX%2BY?a=1&a=2&b=x%20y&flag", nil)
	req.Header.Add("X-Repeat", "one")
	req.Header.Add("X-Repeat", "two")
	req.Header.Set("User-Agent", "test-agent")
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Cookie", "c1=v1; c2=v2")
	resp, body := do(t, req)
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"version":        {ev.Version, "2.0"},
		"routeKey":       {ev.RouteKey, "GET /api/courses/{course_id}"},
		"ctx.routeKey":   {ev.RequestContext.RouteKey, "GET /api/courses/{course_id}"},
		"rawPath":        {ev.RawPath, "/api/courses/course-v1:ORG+X+Y"},
		"rawQuery":       {ev.RawQueryString, "a=1&a=2&b=x%20y&flag"},
		"q.a":            {ev.QueryStringParameters["a"], "1,2"},
		"q.b":            {ev.QueryStringParameters["b"], "x y"},
		"path param":     {ev.PathParameters["course_id"], "course-v1:ORG+X+Y"},
		"x-repeat":       {ev.Headers["x-repeat"], "one,two"},
		"authorization":  {ev.Headers["authorization"], "Bearer tok"},
		"host":           {ev.Headers["host"], strings.TrimPrefix(srv.URL, "http://")},
		"x-fwd-proto":    {ev.Headers["x-forwarded-proto"], "http"},
		"x-fwd-for":      {ev.Headers["x-forwarded-for"], "127.0.0.1"},
		"cookie header":  {ev.Headers["cookie"], ""},
		"cookies":        {strings.Join(ev.Cookies, "|"), "c1=v1|c2=v2"},
		"method":         {ev.RequestContext.HTTP.Method, "GET"},
		"http.path":      {ev.RequestContext.HTTP.Path, "/api/courses/course-v1:ORG+X+Y"},
		"protocol":       {ev.RequestContext.HTTP.Protocol, "HTTP/1.1"},
		"sourceIp":       {ev.RequestContext.HTTP.SourceIP, "127.0.0.1"},
		"userAgent":      {ev.RequestContext.HTTP.UserAgent, "test-agent"},
		"stage":          {ev.RequestContext.Stage, "$default"},
		"domainName":     {ev.RequestContext.DomainName, strings.TrimPrefix(srv.URL, "http://")},
		"requestId hdr":  {resp.Header.Get("Apigw-Requestid"), ev.RequestContext.RequestID},
		"body":           {ev.Body, ""},
		"resp x-one":     {resp.Header.Get("X-One"), "1"},
		"resp x-multi":   {strings.Join(resp.Header.Values("X-Multi"), ","), "a,b"},
		"resp cookies":   {strings.Join(resp.Header.Values("Set-Cookie"), "|"), "s=1; Path=/|t=2"},
		"resp type":      {resp.Header.Get("Content-Type"), "application/json"},
		"flag param set": {fmt.Sprint(ev.QueryStringParameters["flag"] == ""), "true"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if ev.RequestContext.RequestID == "" || ev.RequestContext.TimeEpoch == 0 || ev.RequestContext.Time == "" {
		t.Errorf("request context %+v", ev.RequestContext)
	}
	if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", ev.RequestContext.Time); err != nil {
		t.Errorf("time %q: %v", ev.RequestContext.Time, err)
	}
	if ev.IsBase64Encoded {
		t.Error("empty body marked base64")
	}
}

func TestGatewayBodies(t *testing.T) {
	srv := newGateway(t, nil)
	cases := []struct {
		contentType string
		body        string
		base64      bool
	}{
		{"application/json", `{"a":1}`, false},
		{"text/plain; charset=utf-8", "hello", false},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n", true},
		{"application/octet-stream", "\x00\x01\xff", true},
		{"application/x-www-form-urlencoded", "a=1&b=2", true},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", srv.URL+"/api/bulk/", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		resp, body := do(t, req)
		if resp.StatusCode != 201 {
			t.Fatalf("%s: status %d: %s", c.contentType, resp.StatusCode, body)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		got := ev.Body
		if ev.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(ev.Body)
			if err != nil {
				t.Fatal(err)
			}
			got = string(b)
		}
		if ev.IsBase64Encoded != c.base64 || got != c.body || ev.Headers["content-length"] != fmt.Sprint(len(c.body)) {
			t.Errorf("%s: base64=%v body=%q headers=%v", c.contentType, ev.IsBase64Encoded, got, ev.Headers)
		}
	}

	// A base64 response body is decoded.
	resp, body := do(t, mustReq("GET", srv.URL+"/api/courses/x?binary=1"))
	if !bytes.Equal(body, []byte{0, 1, 2, 255}) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary response %q %v", body, resp.Header)
	}
}

func TestGatewayRouting(t *testing.T) {
	srv := newGateway(t, nil)
	routeOf := func(method, path string) (int, string) {
		resp, body := do(t, mustReq(method, srv.URL+path))
		if resp.StatusCode != 201 {
			return resp.StatusCode, string(body)
		}
		var ev events.APIGatewayV2HTTPRequest
		_ = json.Unmarshal(body, &ev)
		b, _ := json.Marshal(ev.PathParameters)
		return resp.StatusCode, ev.RouteKey + " " + string(b)
	}
	cases := []struct{ method, path, want string }{
		{"GET", "/api/courses/special", "GET /api/courses/special null"},
		{"GET", "/api/courses/other", `GET /api/courses/{course_id} {"course_id":"other"}`},
		{"GET", "/api/courses/a%2Fb", `GET /api/courses/{course_id} {"course_id":"a/b"}`},
		{"POST", "/api/bulk", "POST /api/bulk null"},
		{"POST", "/api/bulk/", "POST /api/bulk null"}, // one trailing slash reaches the route without it
		{"GET", "/api/courses/other/", `GET /api/courses/{course_id} {"course_id":"other"}`},
		{"GET", "/files/a", `GET /files/{name} {"name":"a"}`},
		{"PUT", "/files/a", `ANY /files/{proxy+} {"proxy":"a"}`},
		{"GET", "/files/a/b/c", `ANY /files/{proxy+} {"proxy":"a/b/c"}`},
	}
	for _, c := range cases {
		if status, got := routeOf(c.method, c.path); got != c.want {
			t.Errorf("%s %s -> %d %s, want %s", c.method, c.path, status, got, c.want)
		}
	}
	for _, c := range [][2]string{
		{"POST", "/api/bulk//"},        // one trailing slash only
		{"PUT", "/api/courses/x"},      // method mismatch: 404, not 405
		{"GET", "/api/courses/x/y"},    // one segment only
		{"GET", "/api/courses/"},       // empty variable
		{"GET", "/files/"},             // greedy needs something
		{"HEAD", "/api/courses/x"},     // no implicit HEAD
		{"GET", "/nothing/here"},       //
		{"GET", "/api//courses/x"},     // no path cleaning
		{"GET", "/api/courses/../err"}, // no path cleaning either
	} {
		resp, body := do(t, mustReq(c[0], srv.URL+c[1]))
		if resp.StatusCode != 404 || (c[0] != "HEAD" && string(body) != `{"message":"Not Found"}`) {
			t.Errorf("%s %s -> %d %s, want 404", c[0], c[1], resp.StatusCode, body)
		}
	}
}

// API Gateway HTTP APIs create no route whose path ends in "/" (SAM creates the integration
// and silently no route), so the local gateway refuses such a template instead of serving it.
func TestGatewayRefusesRoutesAWSWouldNotCreate(t *testing.T) {
	for _, path := range []string{"/api/bulk_enroll/v1/bulk_enroll/", "/x/", "no-slash", "/a//b"} {
		tpl, err := samtemplate.Parse([]byte(`
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Bad: {Type: HttpApi, Properties: {Method: POST, Path: '` + path + `'}}
`))
		if err != nil {
			continue // refused when the template is read
		}
		if _, err := localstack.NewGateway(tpl, localstack.NewInvoker(tpl, nil, nil), localstack.GatewayOptions{}); err == nil {
			t.Errorf("route %q was accepted", path)
		}
	}
}

// The trailing slash stays in rawPath (the function sees what the client sent), while the
// route key is the route's own.
func TestGatewayTrailingSlashRawPath(t *testing.T) {
	srv := newGateway(t, nil)
	resp, body := do(t, mustReq("POST", srv.URL+"/api/bulk/"))
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body, &ev); err != nil || resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if ev.RawPath != "/api/bulk/" || ev.RouteKey != "POST /api/bulk" || ev.RequestContext.HTTP.Path != "/api/bulk/" {
		t.Errorf("rawPath %q routeKey %q http.path %q", ev.RawPath, ev.RouteKey, ev.RequestContext.HTTP.Path)
	}
}

func TestGatewayFailures(t *testing.T) {
	builds := map[string]int{}
	srv := newGateway(t, builds)
	for _, path := range []string{"/err", "/panic", "/slow"} {
		start := time.Now()
		resp, body := do(t, mustReq("GET", srv.URL+path))
		if resp.StatusCode != 502 || string(body) != `{"message":"Internal Server Error"}` {
			t.Errorf("%s -> %d %s", path, resp.StatusCode, body)
		}
		if path == "/slow" && time.Since(start) > 5*time.Second {
			t.Errorf("timeout took %v", time.Since(start))
		}
	}
	// A function whose builder is missing fails only its own routes, and is retried.
	for i := 0; i < 2; i++ {
		resp, _ := do(t, mustReq("DELETE", srv.URL+"/api/courses/x"))
		if resp.StatusCode != 502 {
			t.Errorf("missing builder -> %d", resp.StatusCode)
		}
	}
	resp, _ := do(t, mustReq("GET", srv.URL+"/api/courses/x"))
	if resp.StatusCode != 201 {
		t.Errorf("other routes broken: %d", resp.StatusCode)
	}
	do(t, mustReq("GET", srv.URL+"/api/courses/y"))
	if builds["Echo"] != 1 || builds["Missing"] != 2 {
		t.Errorf("builds = %v: want Echo built once, Missing retried", builds)
	}

	// A JSON result without statusCode is a 200 JSON body, as in API Gateway.
	resp, body := do(t, mustReq("GET", srv.URL+"/raw"))
	if resp.StatusCode != 200 || string(body) != `{"hello":"world"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("raw -> %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

func TestGatewayConcurrentResponses(t *testing.T) {
	// Responses of concurrent invocations must not bleed into each other (lambda.Handler
	// returns pooled buffers).
	srv := newGateway(t, nil)
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		go func() {
			id := fmt.Sprintf("c%d", i)
			resp, err := http.Get(srv.URL + "/api/courses/" + id)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var ev events.APIGatewayV2HTTPRequest
			if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
				errs <- err
				return
			}
			if ev.PathParameters["course_id"] != id {
				errs <- fmt.Errorf("asked %s, got %s", id, ev.PathParameters["course_id"])
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func mustReq(method, url string) *http.Request {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	return r
}

// The repository's own template: every route it declares is one API Gateway would create.
func TestRepoTemplateRoutesAreCreatable(t *testing.T) {
	path, err := samtemplate.Find()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localstack.NewGateway(tpl, localstack.NewInvoker(tpl, nil, nil), localstack.GatewayOptions{}); err != nil {
		t.Fatal(err)
	}
}
