package stream

import (
	"context"
	"html"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// The job_finished mail (docs/api.md#jobs). The job worker only records a job's end (the job
// item's final state); that write reaches the mailer on the table's stream like an enrollment
// change, and the mailer tells the job's creator, in their pref-lang, with the counts and the
// results link. The job item's `mailed` flag is the mail-sent marker: the mailer reads the job
// (strongly consistent) before sending and sets the flag after, so a redelivered record, or
// the later record of the flag's own write, mails nobody twice. A send that may pass later
// fails the record, and the stream delivers it again.

// JobMailStore is what the mailer reads and writes for the job_finished mail.
type JobMailStore interface {
	// GetJob reads a job (strongly consistent); nil if there is none.
	GetJob(ctx context.Context, id string) (*rollcall.Job, error)
	// MarkJobMailed records that the job_finished mail went out.
	MarkJobMailed(ctx context.Context, id string) error
}

// owedJobMail is a job whose record owes the job_finished mail.
type owedJobMail struct {
	seqs []string // the records that owe it (a batch may hold several writes of one job)
	id   string
}

// OwesJobMail reports whether a job, as a write left it, owes its creator the job_finished
// mail: it ended with every row run (succeeded or partially_succeeded), has a creator address
// and is not mailed yet. Cancelled and failed jobs are not mailed.
func OwesJobMail(j *rollcall.Job) bool {
	return j != nil && !j.Mailed && j.CreatorEm != "" &&
		(j.State == rollcall.JobSucceeded || j.State == rollcall.JobPartiallySucceeded)
}

// jobMailOwed picks the records of job items that owe the job_finished mail (by their new
// image), one entry per job, in batch order; undecodable ones are returned in bad.
func jobMailOwed(ev events.DynamoDBEvent, items Items, bad map[string]error) ([]owedJobMail, map[string]error) {
	var out []owedJobMail
	at := map[string]int{}
	for _, r := range ev.Records {
		sk, ok := r.Change.Keys["SK"]
		if !ok || sk.DataType() != events.DataTypeString || !items.IsJob(sk.String()) || len(r.Change.NewImage) == 0 {
			continue
		}
		seq := r.Change.SequenceNumber
		it, err := Item(r.Change.NewImage)
		if err != nil {
			if bad == nil {
				bad = map[string]error{}
			}
			bad[seq] = err
			continue
		}
		j := items.DecodeJob(it)
		if !OwesJobMail(j) || !rollcall.ValidJobID(j.ID) {
			continue
		}
		if i, ok := at[j.ID]; ok {
			out[i].seqs = append(out[i].seqs, seq)
			continue
		}
		at[j.ID] = len(out)
		out = append(out, owedJobMail{seqs: []string{seq}, id: j.ID})
	}
	return out, bad
}

// mailJobs sends the job_finished mail of each job that still owes it as the table has it
// now, marks it mailed, and returns the sequence numbers of the records to deliver again. The
// sweep (sweep set) also marks a job that owes nothing (no creator address, not a finished
// job) so that it leaves the owed-mail index.
func (m *Mailer) mailJobs(ctx context.Context, owed []owedJobMail, st *MailStats, sweep bool) map[string]bool {
	failed := map[string]bool{}
	fail := func(o owedJobMail) {
		st.Failed++
		for _, s := range o.seqs {
			failed[s] = true
		}
	}
	for _, o := range owed {
		j, err := m.Jobs.GetJob(ctx, o.id)
		if err != nil {
			m.log().ErrorContext(ctx, "mailer: reading a finished job failed; its mail is retried", "job_id", o.id, "error", err.Error())
			fail(o)
			continue
		}
		if !OwesJobMail(j) {
			st.AlreadySent++ // mailed by an earlier delivery (or the job is gone)
			if sweep && j != nil && !j.Mailed {
				if err := m.Jobs.MarkJobMailed(ctx, o.id); err != nil {
					m.log().ErrorContext(ctx, "mail sweep: clearing a job that owes no mail failed", "job_id", o.id, "error", err.Error())
				}
			}
			continue
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < m.margin() {
			m.log().WarnContext(ctx, "mailer: too close to the deadline; job mail left for the retry", "job_id", o.id)
			fail(o)
			continue
		}
		lang := m.creatorLanguage(ctx, j)
		res := m.Sender.Send(ctx, TemplateKind(rollcall.MailJobFinished, lang), []rollcall.MailMessage{{To: j.CreatorEm, Data: m.jobData(j)}})
		if len(res) != 1 || res[0].Outcome == rollcall.MailRetry {
			var err error
			if len(res) == 1 {
				err = res[0].Err
			}
			m.log().WarnContext(ctx, "mailer: job mail failed; retried", "job_id", o.id, "error", errString(err))
			fail(o)
			continue
		}
		if res[0].Outcome == rollcall.MailRejected {
			// Sending again would fail the same way: the job counts as mailed.
			st.Rejected++
			m.log().ErrorContext(ctx, "mailer: SES rejected a job mail; not retried", "job_id", o.id,
				"status", res[0].Status, "error", errString(res[0].Err))
		} else {
			st.Sent++
		}
		if err := m.Jobs.MarkJobMailed(context.WithoutCancel(ctx), o.id); err != nil {
			// The mail went out: failing the record would send it again.
			m.log().ErrorContext(ctx, "mailer: job mail sent but not marked; a re-delivery may send it again",
				"job_id", o.id, "error", err.Error())
		}
	}
	return failed
}

// creatorLanguage is the language of a job's mail: its creator's pref-lang, as for learners'
// mail; English when they set none or it cannot be read.
func (m *Mailer) creatorLanguage(ctx context.Context, j *rollcall.Job) string {
	if m.Prefs == nil || j.CreatedBy == "" {
		return LangEnglish
	}
	p, err := m.Prefs.MailPreferences(ctx, []string{j.CreatedBy})
	if err != nil {
		m.log().WarnContext(ctx, "mailer: reading the job creator's language failed; English", "job_id", j.ID, "error", err.Error())
		return LangEnglish
	}
	return MailLanguage(p[rollcall.NormalizeUsername(j.CreatedBy)].Lang)
}

// jobData is the data of the job_finished templates (every key each of them uses).
func (m *Mailer) jobData(j *rollcall.Job) map[string]string {
	return map[string]string{
		"name": j.CreatedBy, "name_html": html.EscapeString(j.CreatedBy), "job_id": j.ID, "state": j.State,
		"total": strconv.Itoa(j.Counts.Total), "changed": strconv.Itoa(j.Counts.Changed),
		"unchanged": strconv.Itoa(j.Counts.Unchanged), "invalid": strconv.Itoa(j.Counts.Invalid),
		"errors":      strconv.Itoa(j.Counts.Errors),
		"results_url": strings.TrimRight(m.BaseURL, "/") + rollcall.JobsPath + "/" + j.ID + "/results",
	}
}
