package app

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/rollcall/rollcall/internal/emf"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// EMF records the domain's counts as CloudWatch embedded metrics of one function.
func EMF(function string) rollcall.Metrics { return emfMetrics{function: function} }

type emfMetrics struct{ function string }

func (m emfMetrics) Record(_ context.Context, counts map[string]float64) {
	emf.Emit(m.function, counts)
}

// requestIDHandler puts the Lambda request id on every log line logged with a context (the
// *Context methods), for every function: HTTP, stream and schedule alike. CloudWatch Logs
// Insights then finds every line of one invocation by its request id.
type requestIDHandler struct {
	slog.Handler
	has bool // a request_id attribute is already attached (the HTTP access logger adds one)
}

func withRequestIDs(h slog.Handler) slog.Handler {
	if _, done := h.(*requestIDHandler); done {
		return h
	}
	return &requestIDHandler{Handler: h}
}

func (h *requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.has {
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			r = r.Clone()
			r.AddAttrs(slog.String("request_id", lc.AwsRequestID))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.has
	for _, a := range attrs {
		has = has || a.Key == "request_id"
	}
	return &requestIDHandler{Handler: h.Handler.WithAttrs(attrs), has: has}
}

func (h *requestIDHandler) WithGroup(name string) slog.Handler {
	return &requestIDHandler{Handler: h.Handler.WithGroup(name), has: h.has}
}
