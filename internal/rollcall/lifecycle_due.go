package rollcall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// End dates, ending notices and invitation reminders: the scheduled work on enrollments
// (docs/api.md#enrollment-lifecycle). Every enrollment with such work is in the store's
// due-work index at the time it is due; the hourly schedule reads that index only (no scan).

// DefaultEndingNoticeDays is how long before its end an enrollment's ending notice goes out
// unless the course sets ending_notice_days.
const DefaultEndingNoticeDays = 7

// EnrolledToCompleted is the transition of an enrollment that reached its end date.
const EnrolledToCompleted = "from enrolled to completed"

// CompletedToEnrolled is a completed enrollment enrolled again.
const CompletedToEnrolled = "from completed to enrolled"

// DueAt is when the schedule's next work on e is due (zero: none): an active enrollment's
// ending notice, then its end; an open invitation's next reminder (while it is still open then).
func (e *Enrollment) DueAt() time.Time {
	switch e.State {
	case StateActive:
		if e.EndAt.IsZero() {
			return time.Time{}
		}
		if !e.EndNoticeSent && !e.EndNoticeAt.IsZero() && e.EndNoticeAt.Before(e.EndAt) {
			return e.EndNoticeAt
		}
		return e.EndAt
	case StateInvited:
		if !e.AcceptedAt.IsZero() || e.InvitedAt.IsZero() || e.RemindersSent >= len(e.ReminderDays) {
			return time.Time{}
		}
		at := e.InvitedAt.AddDate(0, 0, e.ReminderDays[e.RemindersSent])
		if !e.ExpiresAt.IsZero() && !at.Before(e.ExpiresAt) {
			return time.Time{}
		}
		return at
	}
	return time.Time{}
}

// EndingNotice is how long before an enrollment's end its notice goes out.
func (c *Course) EndingNotice() time.Duration {
	if c == nil {
		return DefaultEndingNoticeDays * 24 * time.Hour
	}
	return time.Duration(c.EndingNoticeDays) * 24 * time.Hour
}

// setEnd gives e an end date (zero: none) and schedules its ending notice afresh.
func (e *Enrollment) setEnd(end time.Time, c *Course) {
	e.EndAt = end
	e.EndNoticeSent = false
	e.EndNoticeAt = time.Time{}
	if !end.IsZero() {
		if n := c.EndingNotice(); n > 0 {
			e.EndNoticeAt = end.Add(-n)
		}
	}
}

// scheduleReminders starts an invitation's reminders (the course's reminder_days).
func (e *Enrollment) scheduleReminders(now time.Time, c *Course) {
	e.InvitedAt = now.UTC()
	e.RemindersSent = 0
	e.ReminderDays = nil
	if c != nil {
		e.ReminderDays = append([]int(nil), c.ReminderDays...)
	}
}

// Due applies the schedule's work that is due on cur at ed.Now: an active enrollment past its
// end becomes completed; one whose ending notice is due owes the enrollment_ending mail (once);
// an open invitation whose reminder day has come owes a reminder (once each; reminders missed
// while the schedule was down go out as one). False if nothing is due.
func Due(cur *Enrollment, ed Edit) (*Enrollment, bool) {
	if cur == nil {
		return cur, false
	}
	due := cur.DueAt()
	if due.IsZero() || due.After(ed.Now) {
		return cur, false
	}
	next := cur.clone()
	switch cur.Effective(ed.Now) {
	case StateActive:
		if !cur.EndAt.After(ed.Now) {
			next.State = StateCompleted
			next.record(ed, EnrolledToCompleted, "")
			return next, true
		}
		next.EndNoticeSent = true
		next.recordMail(ed, MailEnrollmentEnding)
		return next, true
	case StateInvited:
		for next.RemindersSent < len(next.ReminderDays) &&
			!next.InvitedAt.AddDate(0, 0, next.ReminderDays[next.RemindersSent]).After(ed.Now) {
			next.RemindersSent++
		}
		next.recordMail(ed, MailReminder)
		return next, true
	}
	return cur, false
}

// recordMail stamps a write whose only change is mail owed (no transition: no audit entry).
func (e *Enrollment) recordMail(ed Edit, mail MailKind) { e.record(ed, "", mail) }

// DueResult counts what one scheduled run did to end dates and reminders.
type DueResult struct {
	Completed int  `json:"completed"`
	Notices   int  `json:"ending_notices"`
	Reminders int  `json:"reminders"`
	Skipped   int  `json:"skipped"`
	Busy      int  `json:"busy"`
	Failed    int  `json:"failed"`
	Complete  bool `json:"complete"`
}

// ScheduledResult is what the hourly schedule reports: invitation expiry, then the lifecycle.
type ScheduledResult struct {
	ExpireResult
	Lifecycle DueResult `json:"lifecycle"`
}

// ScheduledRun is the hourly schedule: expire invitations, then end enrollments, send ending
// notices and reminders, all before deadline (the rest waits for the next run).
func (s *Service) ScheduledRun(ctx context.Context, now, deadline time.Time) (ScheduledResult, error) {
	exp, err := s.ExpireDue(ctx, now, deadline)
	out := ScheduledResult{ExpireResult: exp}
	if err != nil {
		return out, err
	}
	out.Lifecycle, err = s.RunDue(ctx, now, deadline)
	return out, err
}

// RunDue does the lifecycle work due at or before now (see Due). It reads the due-work index
// only, re-reads each item consistently and writes with the same version-checked, lease-aware
// write as every single change: an item already changed is decided again, so two runs never
// do one piece of work twice, and the mail a write owes goes out once (the mailer's markers).
// It stops starting new work at deadline; the next run carries on.
func (s *Service) RunDue(ctx context.Context, now, deadline time.Time) (DueResult, error) {
	start := time.Now()
	now = now.UTC()
	ed := Edit{Actor: "system", Source: SourceSchedule, Now: now}
	t := s.sweepPages(ctx, deadline,
		func(fn func([]*Enrollment) bool) error { return s.Store.DueWork(ctx, now, fn) },
		func(e *Enrollment) (MailKind, expireOutcome) { return s.dueOne(ctx, e, ed) })
	res := DueResult{Completed: t.done[""], Notices: t.done[MailEnrollmentEnding], Reminders: t.done[MailReminder],
		Skipped: t.skipped, Busy: t.busy, Failed: t.failed, Complete: t.complete()}
	complete := 0.0
	if res.Complete {
		complete = 1
	}
	s.record(ctx, map[string]float64{"EnrollmentsCompleted": float64(res.Completed), "EndingNotices": float64(res.Notices),
		"Reminders": float64(res.Reminders), "DueFailed": float64(res.Failed), "DueComplete": complete})
	attrs := []any{"completed", res.Completed, "ending_notices", res.Notices, "reminders", res.Reminders, "skipped", res.Skipped,
		"busy", res.Busy, "failed", res.Failed, "complete", res.Complete, "stopped_at_deadline", t.stopped,
		"due_before", now, "duration_ms", time.Since(start).Milliseconds()}
	level := s.log().InfoContext
	if t.err != nil || res.Failed > 0 {
		level = s.log().WarnContext
		if t.err != nil {
			attrs = append(attrs, "error", t.err.Error())
		}
	}
	level(ctx, "lifecycle run", attrs...)
	if t.err != nil && !t.stopped {
		return res, unavailable("scheduled lifecycle work", t.err)
	}
	return res, nil
}

// dueOne applies Due to one item, re-reading and retrying when it changed under us. kind is
// the mail the work owed ("" for a completion).
func (s *Service) dueOne(ctx context.Context, cur *Enrollment, ed Edit) (MailKind, expireOutcome) {
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			e, err := s.Store.GetEnrollment(ctx, cur.ID)
			switch {
			case errors.Is(err, ErrNotFound):
				return "", expireSkipped
			case err != nil && ctx.Err() != nil:
				return "", expireStopped
			case err != nil:
				s.log().WarnContext(ctx, "lifecycle: re-read failed", "enrollment_id", cur.ID, "error", err.Error())
				return "", expireFailed
			}
			cur = e
		}
		next, ok := Due(cur, ed)
		if !ok {
			return "", expireSkipped
		}
		var kind MailKind
		if next.MailSeq > cur.MailSeq {
			kind = next.MailKind
		}
		err := s.Store.SaveEnrollment(ctx, next, cur.Version)
		switch {
		case err == nil:
			return kind, expireDone
		case errors.Is(err, ErrCourseBusy):
			return "", expireBusy
		case errors.Is(err, ErrVersionChange):
			continue
		case ctx.Err() != nil:
			return "", expireStopped
		default:
			s.log().WarnContext(ctx, "lifecycle: write failed", "enrollment_id", cur.ID, "error", err.Error())
			return "", expireFailed
		}
	}
	return "", expireFailed
}

// endFor is the end date an Enroll gives: the request's, else for a new or renewed enrollment
// the course's enrollment_duration_days from now.
func (ed Edit) endFor(eff State) time.Time {
	if !ed.EndAt.IsZero() {
		return ed.EndAt
	}
	if ed.Course != nil && ed.Course.EnrollmentDurationDays > 0 && eff != StateActive && eff != StateInvited {
		return ed.Now.AddDate(0, 0, ed.Course.EnrollmentDurationDays).UTC().Truncate(time.Second)
	}
	return time.Time{}
}

// MaxDurationDays bounds duration_days and a course's enrollment_duration_days (ten years).
const MaxDurationDays = 3650

// parseEnd reads bulk enroll's optional end_at (RFC 3339) and duration_days.
func parseEnd(f Fields, r *BulkRequest, v *ValidationError) {
	if fd, ok := f["end_at"]; ok && fd.Present {
		s := single(fd)
		t, err := time.Parse(time.RFC3339, s)
		switch {
		case fd.multiple() || fd.Invalid || fd.Bool != nil:
			v.Add("end_at", "Expected a single value, not a list.")
		case s == "":
		case err != nil:
			v.Add("end_at", msgDatetimeFormat)
		case t.Year() > 9999 || t.Year() < 2000:
			v.Add("end_at", msgDatetimeFormat)
		default:
			r.EndAt = t.UTC().Truncate(time.Second)
		}
	}
	if fd, ok := f["duration_days"]; ok && fd.Present {
		s := single(fd)
		var n int
		_, err := fmt.Sscanf(s, "%d", &n)
		switch {
		case fd.multiple() || fd.Invalid || fd.Bool != nil:
			v.Add("duration_days", "Expected a single value, not a list.")
		case s == "":
		case err != nil || fmt.Sprint(n) != s:
			v.Add("duration_days", "A valid integer is required.")
		case n < 1 || n > MaxDurationDays:
			v.Add("duration_days", fmt.Sprintf("Ensure this value is between 1 and %d.", MaxDurationDays))
		default:
			r.DurationDays = n
		}
	}
}

// msgDatetimeFormat is DRF's message for a datetime it cannot parse.
const msgDatetimeFormat = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."

// MaxReminders bounds a course's reminder_days.
const MaxReminders = 10

// lifecycleInput validates a course's end-date and reminder settings.
func lifecycleInput(in CourseInput, c *Course, v *ValidationError) {
	c.EndingNoticeDays = DefaultEndingNoticeDays
	if p := in.EnrollmentDurationDays; p != nil {
		if *p < 0 || *p > MaxDurationDays {
			v.Add("enrollment_duration_days", fmt.Sprintf("Ensure this value is between 0 and %d.", MaxDurationDays))
		} else {
			c.EnrollmentDurationDays = *p
		}
	}
	if p := in.EndingNoticeDays; p != nil {
		if *p < 0 || *p > 365 {
			v.Add("ending_notice_days", "Ensure this value is between 0 and 365.")
		} else {
			c.EndingNoticeDays = *p
		}
	}
	c.RequireAcceptance = in.RequireAcceptance != nil && *in.RequireAcceptance
	c.ReminderDays = []int{}
	if len(in.ReminderDays) > MaxReminders {
		v.Add("reminder_days", fmt.Sprintf("Ensure this field has no more than %d elements.", MaxReminders))
		return
	}
	for _, d := range in.ReminderDays {
		if d < 1 || d > 365 {
			v.Add("reminder_days", "Ensure each value is between 1 and 365.")
			return
		}
		if !slices.Contains(c.ReminderDays, d) {
			c.ReminderDays = append(c.ReminderDays, d)
		}
	}
	slices.Sort(c.ReminderDays)
}
