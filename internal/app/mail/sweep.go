package mail

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/stream"
)

// DefaultMailSweepAfter is how long mail must have been owed before the sweep sends it when
// MAIL_SWEEP_AFTER_SECONDS is unset: MailerFunction's MaximumRecordAgeInSeconds (an hour)
// plus 15 minutes (the mailer's timeout and the time between a change's clock reading and
// its write).
const DefaultMailSweepAfter = 75 * time.Minute

// NewSweeper builds the MailSweepFunction's worker on the mailer's own sender and store.
func NewSweeper(ctx context.Context, d *app.Deps) (*stream.Sweeper, error) {
	m, err := NewMailer(ctx, d)
	if err != nil {
		return nil, err
	}
	m.Metrics = app.EMF("MailSweepFunction")
	after := DefaultMailSweepAfter
	if v := os.Getenv("MAIL_SWEEP_AFTER_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("config: MAIL_SWEEP_AFTER_SECONDS %q: want a number of seconds", v)
		}
		after = time.Duration(n) * time.Second
	}
	return &stream.Sweeper{Mailer: m, Store: d.Store, After: after}, nil
}

// MailSweepFunction builds the scheduled function that sends mail the stream gave up on.
func MailSweepFunction(ctx context.Context, c app.Config) (any, error) {
	d, err := app.Build(ctx, c)
	if err != nil {
		return nil, err
	}
	s, err := NewSweeper(ctx, d)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ json.RawMessage) (stream.SweepResult, error) {
		return s.Run(ctx)
	}, nil
}
