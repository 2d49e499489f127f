package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// API holds what the handlers share.
type API struct {
	Svc     *rollcall.Service
	Auth    rollcall.TokenVerifier
	Log     *slog.Logger
	BaseURL string                    // public base URL for links (no trailing slash)
	Idem    rollcall.IdempotencyStore // Idempotency-Key records; nil disables the header
	// IdemSealKey seals the answers kept for Idempotency-Keys (they may carry tokens).
	IdemSealKey []byte
	// SignupURL is where a learner without an account signs up (shown when an invitation is
	// accepted pending sign-up); empty if not configured.
	SignupURL string
}

// Route is one HttpApi event of template.yaml: its event name, method and path.
type Route struct {
	Name, Method, Path string
}

// Handler builds the function's handler from its routes (read from template.yaml) and the
// operations it implements, keyed by event name. Every route needs an operation and every
// operation a route, so the code and the template cannot drift apart.
func Handler(log *slog.Logger, routes []Route, ops map[string]http.HandlerFunc) (http.Handler, error) {
	mux := http.NewServeMux()
	used := map[string]bool{}
	for _, rt := range routes {
		op, ok := ops[rt.Name]
		if !ok {
			return nil, fmt.Errorf("httpapi: route %s %s (%s) has no operation", rt.Method, rt.Path, rt.Name)
		}
		used[rt.Name] = true
		mux.Handle(Pattern(rt.Method, rt.Path), op)
		// API Gateway hands /x/ to the route /x; served directly (tests, a plain server), the
		// handler does the same.
		if rt.Path != "/" && !strings.HasSuffix(rt.Path, "/") {
			mux.Handle(Pattern(rt.Method, rt.Path+"/"), op)
		}
	}
	for name := range ops {
		if !used[name] {
			return nil, fmt.Errorf("httpapi: operation %s has no route in template.yaml", name)
		}
	}
	// Anything else is API Gateway's 404 (it never reaches a function in AWS).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	})
	return withLogging(log, mux), nil
}

// Pattern turns an API Gateway route into a ServeMux pattern; the syntax of {params} is the
// same, but a trailing slash must be anchored or ServeMux would match a whole subtree.
func Pattern(method, path string) string {
	if strings.HasSuffix(path, "/") {
		path += "{$}"
	}
	return method + " " + path
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// withLogging adds the request id to every log line of the request, writes one access-log
// line per request and turns a panic into a 500 without a stack trace in the response.
func withLogging(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := requestID(r)
		l := log.With("request_id", reqID)
		ctx := context.WithValue(r.Context(), loggerKey{}, l)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		w.Header().Set("X-Request-Id", reqID)
		defer func() {
			if p := recover(); p != nil {
				l.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeJSON(rec, http.StatusInternalServerError, detail{detailServerError})
			}
			l.InfoContext(ctx, "request", "method", r.Method, "path", RedactPath(r.URL.Path), "status", rec.status,
				"duration_ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestID is the Lambda request id, else API Gateway's, else the client's X-Request-Id.
func requestID(r *http.Request) string {
	if lc, ok := lambdacontext.FromContext(r.Context()); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	if gw, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok && gw.RequestID != "" {
		return gw.RequestID
	}
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 {
		return id
	}
	return fmt.Sprintf("local-%d", time.Now().UnixNano())
}

// authenticate returns the caller of a request that needs a token.
func (a *API) authenticate(r *http.Request) (rollcall.Actor, error) {
	tok, err := ParseAuthorizationHeader(r.Header.Get("Authorization"))
	if err != nil {
		return rollcall.Actor{}, err
	}
	return a.Auth.Verify(r.Context(), tok)
}

// authed wraps a handler that needs a caller.
func (a *API) authed(h func(http.ResponseWriter, *http.Request, rollcall.Actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h(w, r, actor)
	}
}

// RedactPath is a request path fit for a log line: an invitation token (a path segment of 43
// base64url characters, the token's shape) is replaced, since the token is a credential.
func RedactPath(p string) string {
	if !strings.Contains(p, "invitations/") {
		return p
	}
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		if rollcall.ValidTokenShape(seg) {
			parts[i] = "[token]"
		}
	}
	return strings.Join(parts, "/")
}
