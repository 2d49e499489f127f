package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// ExpireMargin is the time the expiry function keeps free before its deadline: it starts no
// new write later, and the next scheduled run carries on.
const ExpireMargin = 10 * time.Second

// ExpireHandler is the ExpireInvitationsFunction: a scheduled event in, the run's counts out.
func (d *Deps) ExpireHandler() func(ctx context.Context, ev json.RawMessage) (rollcall.ScheduledResult, error) {
	return func(ctx context.Context, _ json.RawMessage) (rollcall.ScheduledResult, error) {
		var deadline time.Time
		if dl, ok := ctx.Deadline(); ok {
			deadline = dl.Add(-ExpireMargin)
			if until := time.Until(dl); until < 2*ExpireMargin {
				// A short timeout (tests, a local run): keep a proportional margin instead.
				deadline = dl.Add(-until / 4)
			}
		}
		return d.Service.ScheduledRun(ctx, d.Service.Clock(), deadline)
	}
}

// ExpireInvitationsFunction builds the scheduled expiry function.
func ExpireInvitationsFunction(ctx context.Context, c Config) (any, error) {
	d, err := Build(ctx, c)
	if err != nil {
		return nil, err
	}
	d.Service.Metrics = EMF("ExpireInvitationsFunction")
	return d.ExpireHandler(), nil
}
