package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// MailRef names one owed mail: the seq-th mail of an enrollment.
type MailRef = rollcall.MailRef

// MailSentTTL is how long a mail-sent marker is kept: far longer than a stream record can be
// retried (24 hours), so a re-delivered record never mails anyone twice.
const MailSentTTL = 7 * 24 * time.Hour

func mailSentKey(r MailRef) item {
	pk, _ := EnrollmentKey(r.EnrollmentID)
	return key(pk, MailSentSK(r.EnrollmentID, r.Seq))
}

// MailSent reports which of refs are marked as sent (strongly consistent BatchGetItem).
func (s *Store) MailSent(ctx context.Context, refs []MailRef) (map[MailRef]bool, error) {
	keys := make([]item, 0, len(refs))
	byKey := make(map[string]MailRef, len(refs))
	for _, r := range refs {
		if !rollcall.ValidEnrollmentID(r.EnrollmentID) {
			continue
		}
		k := mailSentKey(r)
		byKey[describe(k)] = r
		keys = append(keys, k)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("mail sent markers: %w", err)
	}
	out := make(map[MailRef]bool, len(items))
	for _, it := range items {
		if r, ok := byKey[describe(it)]; ok {
			out[r] = true
		}
	}
	return out, nil
}

// MarkMailSent records refs as sent (BatchWriteItem), each marker with a TTL of MailSentTTL
// after now and the outcome (e.g. the SES message id, or why the mail was given up). It
// returns the refs whose marker could not be written.
func (s *Store) MarkMailSent(ctx context.Context, refs []MailRef, outcome map[MailRef]string, now time.Time) (map[MailRef]error, error) {
	seen := make(map[MailRef]bool, len(refs))
	uniq := refs[:0:0]
	for _, r := range refs {
		if !seen[r] && rollcall.ValidEnrollmentID(r.EnrollmentID) {
			seen[r] = true
			uniq = append(uniq, r)
		}
	}
	refs = uniq
	items := make([]item, len(refs))
	for i, r := range refs {
		it := mailSentKey(r)
		it["id"] = str(r.EnrollmentID)
		it["seq"] = num(r.Seq)
		it["sent_at"] = str(FormatTime(now))
		it["ttl"] = num(now.Add(MailSentTTL).Unix())
		if o := outcome[r]; o != "" {
			it["outcome"] = str(o)
		}
		items[i] = it
	}
	failed, err := s.batchPut(ctx, items)
	out := make(map[MailRef]error, len(failed))
	for i, ferr := range failed {
		out[refs[i]] = ferr
	}
	return out, err
}
