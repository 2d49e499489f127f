// Package ses is rollcall's mail adapter: templated bulk mail through SES v2 (SendBulkEmail),
// within the account's send rate, with a result per destination so that only the failed ones
// are retried.
package ses

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// MaxDestinations is how many destinations one SendBulkEmail call may carry.
const MaxDestinations = rollcall.MaxMailDestinations

// API is the SES v2 call the sender makes (Client in AWS and against the emulator).
type API interface {
	SendBulkEmail(context.Context, *SendBulkEmailInput) (*SendBulkEmailOutput, error)
}

// The message, outcome and result types are the domain's mail port (rollcall.MailSender);
// these names keep the adapter's code short.
type (
	Message = rollcall.MailMessage
	Outcome = rollcall.MailOutcome
	Result  = rollcall.MailResult
)

const (
	Sent     = rollcall.MailAccepted
	Retry    = rollcall.MailRetry
	Rejected = rollcall.MailRejected
)

// RateLimiter holds a send back until n more messages fit in the send rate.
type RateLimiter interface {
	Wait(ctx context.Context, n int) error
}

// Sender sends templated bulk mail.
type Sender struct {
	Client API
	// From is what mail is sent from (MAIL_FROM): a verified address, or "Name <address>".
	// It goes to SES whole; the bare address is what IAM and the identity check compare.
	From string
	// TemplatePrefix + kind is the SES template name ("rollcall-<stage>-" + "invited").
	TemplatePrefix string
	// ConfigurationSet is named on every send (bounces, complaints, rendering failures and
	// rejects are recorded through it); "" names none.
	ConfigurationSet string
	// Limiter paces sending to the account's rate (one Wait per SendBulkEmail call, for its
	// destinations); nil sends unpaced.
	Limiter RateLimiter
	// PerCall caps the destinations of one call; 0 or more than MaxDestinations means
	// MaxDestinations. (The send rate does not: the limiter spreads a call over seconds.)
	PerCall int

	calls    atomic.Int64
	messages atomic.Int64
}

// Calls is how many SendBulkEmail calls the sender made; Messages how many destinations
// they carried.
func (s *Sender) Calls() int64    { return s.calls.Load() }
func (s *Sender) Messages() int64 { return s.messages.Load() }

// Send sends the messages with the template kind, MaxDestinations per call, and returns one
// result per message in order. It stops early (the rest are Retry) when ctx ends.
func (s *Sender) Send(ctx context.Context, kind string, msgs []Message) []Result {
	results := make([]Result, len(msgs))
	per := MaxDestinations
	if s.PerCall > 0 && s.PerCall < per {
		per = s.PerCall
	}
	for lo := 0; lo < len(msgs); lo += per {
		hi := min(lo+per, len(msgs))
		s.sendChunk(ctx, kind, msgs[lo:hi], results[lo:hi])
	}
	return results
}

func (s *Sender) sendChunk(ctx context.Context, kind string, msgs []Message, out []Result) {
	failAll := func(status string, outcome Outcome, err error) {
		for i := range out {
			out[i] = Result{Outcome: outcome, Status: status, Err: err}
		}
	}
	entries := make([]BulkEmailEntry, len(msgs))
	for i, m := range msgs {
		data, err := json.Marshal(m.Data)
		if err != nil {
			failAll("ERROR", Rejected, err)
			return
		}
		entries[i] = BulkEmailEntry{
			Destination:             Destination{ToAddresses: []string{m.To}},
			ReplacementEmailContent: ReplacementEmailContent{ReplacementTemplate{ReplacementTemplateData: string(data)}},
		}
	}
	if s.Limiter != nil {
		if err := s.Limiter.Wait(ctx, len(msgs)); err != nil {
			failAll("ERROR", Retry, err)
			return
		}
	} else if err := ctx.Err(); err != nil {
		failAll("ERROR", Retry, err)
		return
	}
	s.calls.Add(1)
	in := &SendBulkEmailInput{
		FromEmailAddress:     s.From,
		ConfigurationSetName: s.ConfigurationSet,
		DefaultContent:       BulkEmailContent{Template{TemplateName: s.TemplatePrefix + kind, TemplateData: "{}"}},
		BulkEmailEntries:     entries,
		// The configuration set's CloudWatch dimension: events counted by mail kind.
		DefaultEmailTags: []MessageTag{{Name: "MailKind", Value: kind}},
	}
	res, err := s.Client.SendBulkEmail(ctx, in)
	if err != nil {
		failAll("ERROR", Retry, fmt.Errorf("SendBulkEmail %s: %w", kind, err))
		return
	}
	if len(res.BulkEmailEntryResults) != len(msgs) {
		failAll("ERROR", Retry, fmt.Errorf("SendBulkEmail %s: %d results for %d destinations", kind, len(res.BulkEmailEntryResults), len(msgs)))
		return
	}
	for i, r := range res.BulkEmailEntryResults {
		status := r.Status
		switch r.Status {
		case StatusSuccess:
			s.messages.Add(1)
			out[i] = Result{Outcome: Sent, MessageID: r.MessageID, Status: status}
		case StatusMessageRejected, StatusInvalidParameter:
			out[i] = Result{Outcome: Rejected, Status: status, Err: entryError(r)}
		default:
			out[i] = Result{Outcome: Retry, Status: status, Err: entryError(r)}
		}
	}
}

func entryError(r BulkEmailEntryResult) error {
	msg := r.Error
	if msg == "" {
		msg = "no detail"
	}
	return fmt.Errorf("SES %s: %s", r.Status, msg)
}

// Limiter spaces sends so that on average at most Rate messages a second go out: a call for n
// messages waits until the previous calls' n/Rate seconds have passed.
type Limiter struct {
	rate float64
	mu   sync.Mutex
	next time.Time
}

// NewLimiter returns a limiter for rate messages a second (<= 0: unlimited).
func NewLimiter(rate float64) *Limiter { return &Limiter{rate: rate} }

// Wait blocks until n messages may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil || l.rate <= 0 || n <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	start := l.next
	if start.Before(now) {
		start = now
	}
	if dl, ok := ctx.Deadline(); ok && start.After(dl) {
		l.mu.Unlock()
		return context.DeadlineExceeded
	}
	l.next = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	if d := time.Until(start); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// BareAddress is the address of a From value, which may be "address" or "Name <address>"
// (what SES's identity check and the IAM condition ses:FromAddress compare).
func BareAddress(from string) (string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("mail from %q: %w", from, err)
	}
	return a.Address, nil
}
