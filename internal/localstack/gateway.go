package localstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// Gateway is an http.Handler that stands in for the API Gateway HTTP API of template.yaml: it
// routes each request to the function owning the matching HttpApi route, hands it a payload
// v2 event (events.APIGatewayV2HTTPRequest) through the Invoker, and writes the
// events.APIGatewayV2HTTPResponse back.
type Gateway struct {
	routes *routeTable
	inv    *Invoker
	log    *slog.Logger
	opts   GatewayOptions
}

// GatewayOptions tunes the Gateway; the zero value is fine.
type GatewayOptions struct {
	// Logger for access lines and function errors; nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (413 above it); default 10 MiB, API Gateway's quota.
	MaxBodyBytes int64
	// APIID goes into requestContext.apiId; default "local".
	APIID string
	// Now is the clock for requestContext.time; nil means time.Now.
	Now func() time.Time
}

// API Gateway's own error bodies.
const (
	notFoundBody     = `{"message":"Not Found"}`
	internalBody     = `{"message":"Internal Server Error"}`
	tooLargeBody     = `{"message":"Request Entity Too Large"}`
	defaultMaxBody   = 10 << 20
	localAccountID   = "123456789012"
	apigwRequestIDHd = "Apigw-Requestid"
)

// NewGateway builds a Gateway for the template's HttpApi routes.
func NewGateway(tpl *samtemplate.Template, inv *Invoker, opts GatewayOptions) (*Gateway, error) {
	rt, err := newRouteTable(tpl)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = defaultMaxBody
	}
	if opts.APIID == "" {
		opts.APIID = "local"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Gateway{routes: rt, inv: inv, log: opts.Logger, opts: opts}, nil
}

// RouteInfo describes one route, for listings.
type RouteInfo struct {
	Function string
	Key      string // "GET /api/users/{username}"
}

// Routes lists the routes the gateway serves.
func (g *Gateway) Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range g.routes.routes {
		out = append(out, RouteInfo{Function: r.function, Key: r.Key()})
	}
	if d := g.routes.dflt; d != nil {
		out = append(out, RouteInfo{Function: d.function, Key: d.Key()})
	}
	return out
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := apigwRequestID()
	w.Header().Set(apigwRequestIDHd, reqID)

	ro, params := g.routes.match(r.Method, r.URL.EscapedPath())
	if ro == nil {
		writeJSON(w, http.StatusNotFound, notFoundBody)
		g.log.Info("request", "method", r.Method, "path", httpapi.RedactPath(r.URL.Path), "status", http.StatusNotFound, "route", "-")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.opts.MaxBodyBytes+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"message":"Bad Request"}`)
		return
	}
	if int64(len(body)) > g.opts.MaxBodyBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, tooLargeBody)
		return
	}

	ev := g.event(r, ro, params, body, reqID)
	payload, err := json.Marshal(ev)
	if err != nil {
		g.fail(w, r, ro, start, err)
		return
	}
	out, err := g.inv.Invoke(r.Context(), ro.function, payload)
	if err != nil {
		g.fail(w, r, ro, start, err)
		return
	}
	status, err := writeResponse(w, out)
	if err != nil {
		g.fail(w, r, ro, start, err)
		return
	}
	g.log.Info("request", "method", r.Method, "path", httpapi.RedactPath(r.URL.Path), "status", status,
		"function", ro.function, "ms", time.Since(start).Milliseconds())
}

// fail answers like API Gateway does when the integration fails, and logs why.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, ro *route, start time.Time, err error) {
	writeJSON(w, http.StatusBadGateway, internalBody)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", http.StatusBadGateway,
		"function", ro.function, "ms", time.Since(start).Milliseconds(), "err", err}
	var fe *FunctionError
	if errors.As(err, &fe) && fe.Stack != nil {
		attrs = append(attrs, "stack", string(fe.Stack))
	}
	if errors.Is(err, context.Canceled) {
		g.log.Info("request cancelled by the client", attrs...)
		return
	}
	g.log.Error("function failed", attrs...)
}

// event builds the payload v2 event as API Gateway does.
func (g *Gateway) event(r *http.Request, ro *route, params map[string]string, body []byte, reqID string) events.APIGatewayV2HTTPRequest {
	now := g.opts.Now()
	sourceIP := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = host
	}

	headers := map[string]string{}
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			// Payload v2 moves cookies out of the headers into their own list.
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	if len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	if prev := headers["x-forwarded-for"]; prev != "" {
		headers["x-forwarded-for"] = prev + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	headers["x-forwarded-proto"] = proto
	headers["x-forwarded-port"] = port
	headers["x-amzn-trace-id"] = traceID(now)

	var query map[string]string
	if r.URL.RawQuery != "" {
		q, _ := url.ParseQuery(r.URL.RawQuery) // like API Gateway, keep what parses
		if len(q) > 0 {
			query = make(map[string]string, len(q))
			for k, vs := range q {
				query[k] = strings.Join(vs, ",")
			}
		}
	}

	domain := r.Host
	hostOnly := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		hostOnly = h
	}
	prefix, _, _ := strings.Cut(hostOnly, ".")

	ev := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: ro.Key(),
		// HTTP APIs hand the function the decoded path in rawPath (and http.path).
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     ro.Key(),
			AccountID:    localAccountID,
			Stage:        "$default",
			RequestID:    reqID,
			APIID:        g.opts.APIID,
			DomainName:   domain,
			DomainPrefix: prefix,
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if isTextContent(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// isTextContent tells which bodies API Gateway passes as text; everything else (form posts,
// multipart, octet-stream, no content type) arrives base64-encoded with isBase64Encoded.
func isTextContent(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/graphql":
		return true
	}
	return false
}

// writeResponse writes a function's payload v2 response. Like API Gateway, a result that is
// valid JSON without a statusCode is sent as a 200 application/json body.
func writeResponse(w http.ResponseWriter, out []byte) (int, error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) != nil || probe["statusCode"] == nil {
		if !json.Valid(out) {
			return 0, errors.New("function returned a result that is not JSON")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return http.StatusOK, nil
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, errors.New("malformed function response: " + err.Error())
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return 0, errors.New("function response has status code " + strconv.Itoa(resp.StatusCode))
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return 0, errors.New("function response body is not valid base64")
		}
	}
	h := w.Header()
	for k, v := range resp.Headers {
		if _, multi := resp.MultiValueHeaders[k]; !multi {
			h.Set(k, v)
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		// Keep net/http from sniffing a type API Gateway would not have sent.
		h["Content-Type"] = nil
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body))
	return resp.StatusCode, nil
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// apigwRequestID looks like API Gateway's request ids ("JKJaXmPLvHcESHA=").
func apigwRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// traceID is an X-Ray trace header value: Root=1-<epoch hex>-<96 random bits>.
func traceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + hex.EncodeToString(b[:])
}
