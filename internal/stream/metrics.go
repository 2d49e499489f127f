package stream

import "context"

// emit records the invocation's mail counts (MailSent, MailFailed, MailRejected) through the
// domain's Metrics port; the app wires it to CloudWatch embedded metrics.
func (m *Mailer) emit(ctx context.Context, sent, failed, rejected int) {
	if m.Metrics != nil {
		m.Metrics.Record(ctx, map[string]float64{"MailSent": float64(sent), "MailFailed": float64(failed), "MailRejected": float64(rejected)})
	}
}
