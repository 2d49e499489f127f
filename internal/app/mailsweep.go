package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/internal/stream"
)

// DefaultMailSweepAfter is how long mail must have been owed before the sweep sends it when
// MAIL_SWEEP_AFTER_SECONDS is unset: MailerFunction's MaximumRecordAgeInSeconds (an hour)
// plus 15 minutes (the mailer's timeout and the time between a change's clock reading and
// its write).
const DefaultMailSweepAfter = 75 * time.Minute

// MailSweeper builds the MailSweepFunction's worker on the mailer's own sender and store.
func (d *Deps) MailSweeper(ctx context.Context) (*stream.Sweeper, error) {
	m, err := d.Mailer(ctx)
	if err != nil {
		return nil, err
	}
	m.Metrics = emfMetrics{function: "MailSweepFunction"}
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

func init() {
	registry["MailSweepFunction"] = func(ctx context.Context, c Config) (any, error) {
		d, err := Build(ctx, c)
		if err != nil {
			return nil, err
		}
		s, err := d.MailSweeper(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, _ json.RawMessage) (stream.SweepResult, error) {
			return s.Run(ctx)
		}, nil
	}
}
