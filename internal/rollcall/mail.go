package rollcall

import (
	"context"
	"fmt"
)

// The mail port: what the stream functions send through and the SES adapter implements.

// MailRef names one owed mail: the seq-th mail of an enrollment.
type MailRef struct {
	EnrollmentID string
	Seq          int64
}

// MaxMailDestinations is how many destinations one bulk send may carry (SES's SendBulkEmail).
const MaxMailDestinations = 50

// MailMessage is one destination of a bulk send: an address and its template data.
type MailMessage struct {
	To   string
	Data map[string]string
}

// MailOutcome is what became of one message.
type MailOutcome int

const (
	// MailAccepted: the mail service accepted the message.
	MailAccepted MailOutcome = iota
	// MailRetry: a failure that may pass (an outage, throttling, a quota, a configuration
	// being fixed); the message should be sent again later.
	MailRetry
	// MailRejected: the mail service will never send this message (rejected content, an
	// invalid parameter such as the address); sending it again would fail the same way.
	MailRejected
)

func (o MailOutcome) String() string {
	switch o {
	case MailAccepted:
		return "sent"
	case MailRetry:
		return "retry"
	case MailRejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MailResult is the outcome of one message of a send.
type MailResult struct {
	Outcome   MailOutcome
	MessageID string // when sent
	Status    string // the mail service's status of the entry, or "ERROR" when the call failed
	Err       error  // why, unless sent
}

// MailSender sends one template kind to many destinations, one result per message.
type MailSender interface {
	Send(ctx context.Context, kind string, msgs []MailMessage) []MailResult
}
