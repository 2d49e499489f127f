// Package dynamo implements rollcall.Store on one DynamoDB table (single-table design).
//
// Items (docs/data-model.md has the access patterns each key serves):
//
//	enrollment   PK=P#<eh>          SK=E#<ch>   id course_id email username state role mode
//	             auto_enroll cohort created_at updated_at expires_at token_hash token_nonce ver
//	             chg_by chg_at chg_reason chg_tr chg_src mail_kind mail_seq accepted_at inv_mails
//	             seq GSI1PK=C#<course>#<block shard> GSI1SK=<seq>              (every enrollment)
//	             GSI2PK=R#<shard> GSI2SK=<created>#<id>   (registered, active or unenrolled)
//	             GSI2PK=X#<shard> GSI2SK=<expires>#<id>   (open invitations)
//	             GSI3PK=T#<token_hash>             (the latest invitation's token, kept after use)
//	             GSI4PK=S#<course>#<state>#<shard> GSI4SK=<seq>               (every enrollment)
//	             mail_owed_at GSI5PK=O#<shard> GSI5SK=<owed at>#<id>  (only while mail is owed)
//	             end_at end_notice_at end_notice_sent reminders_sent
//	             GSI6PK=W#<shard> GSI6SK=<due>#<id>   (only while the schedule has work on it:
//	             an active enrollment's ending notice or end, an open invitation's reminder)
//	user         PK=U#<lower(username)> SK=USER      username email created_at
//	user/email   PK=P#<eh>          SK=USER          username email created_at
//	course       PK=COURSE#<id>     SK=COURSE        title cohorts admins invitation_ttl_days ...
//	             GSI2PK=ORG#<lower(org)> GSI2SK=<id>   (an organization's courses)
//	email opt-in PK=U#<lower(username)> SK=OPTIN#<lower(org)>  org opted_in set_at
//	preferences  PK=U#<lower(username)> SK=PREFS    p:<key> (one attribute per preference)
//	lease        PK=LEASE#<course>  SK=LEASE#<0..3>  owner until ttl  (4 shards, LeaseShards)
//	             PK=LEASE#~mail-sweep SK=LEASE      owner until ttl  (the mail sweep)
//	audit entry  PK=P#<eh>          SK=A#<ch>#<at>#<ver>[#<index>]   by reason transition source
//	             from to idx ...   (index: the further changes of one write, e.g. a PATCH)
//	mail sent    PK=P#<eh>          SK=M#<ch>#<seq>        ttl
//	idempotency  PK=IDEM#<hash>     SK=IDEM          request_hash state attempt until status headers parts ttl
//	             PK=IDEM#<hash>     SK=IDEM#<attempt>#<n>   body (gzipped part) ttl
//	invite quota PK=QUOTA#<lower(username)>#<day> SK=QUOTA   n ttl   (a course admin's new invitations)
//	send rate    PK=MAILRATE#<unix second> SK=MAILRATE   n ttl   (messages sent in that second)
//	job ref      PK=JREF#<hash(lower(identifier))> SK=<job id>#<chunk>  job_id chunk
//	             (a job chunk whose results name the identifier; for the retire step)
//	retirement   PK=RET#<retirement id> SK=RET  rid orig_username orig_email (until retired)
//	             retired_username retired_email state last_state responses retired created
//	             modified ver  GSI2PK=Q#<state> GSI2SK=<created>#<rid>   (the retirement queue)
//
// eh and ch are the two halves of the enrollment id (rollcall.EnrollmentID): 96-bit hashes of
// the email and the course id. <shard> spreads the registered enrollments and the open
// invitations over Shards partition keys (by a hash of the id).
//
// A course's enrollments are numbered in creation order (seq, from the enr_seq counter on the
// course item, reserved a range per bulk request) and cut into blocks of BlockSize: block b
// lives in shard b mod Shards. A bulk of 10,000 learners spans 20 blocks, so its writes spread
// over all 16 keys, yet a page of 100 consecutive enrollments lies in one or two blocks: one
// or two Queries instead of one per shard.
package dynamo

import (
	"fmt"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Shards is how many partition keys a hot key (a course, the recent list, the expiry list) is
// spread over. At 1,000 writes a second per key this carries 16,000 enrollments a second.
const Shards = 16

// BlockSize is how many consecutive enrollments of a course share a GSI1 partition key.
const BlockSize = 512

// Index names, as template.yaml declares them.
const (
	IndexCourse = "GSI1"
	IndexTime   = "GSI2"
	IndexToken  = "GSI3"
	IndexState  = "GSI4"
	// IndexMailOwed is sparse: an enrollment is in it only while it owes mail not yet sent.
	IndexMailOwed = "GSI5"
	// IndexDue is sparse: an enrollment is in it only while the schedule has work on it (an
	// ending notice, an end, an invitation reminder), at the time that work is due.
	IndexDue = "GSI6"
)

// Key prefixes.
const (
	pfxPerson     = "P#"
	pfxEnrollment = "E#"
	pfxUser       = "U#"
	pfxCourse     = "COURSE#"
	pfxLease      = "LEASE#"
	pfxAudit      = "A#"
	pfxMailSent   = "M#"
	pfxIdem       = "IDEM#"
	pfxRegMark    = "REGMARK#"
	pfxCourseIdx  = "C#"
	pfxRecent     = "R#"
	pfxExpiry     = "X#"
	pfxToken      = "T#"
	pfxState      = "S#"
	pfxMailOwed   = "O#"
	pfxOwedJob    = "job:" // an owed-mail entry of a job (":" is in no enrollment id)
	pfxDue        = "W#"
	pfxMailRate   = "MAILRATE#"
	skUser        = "USER"
	skCourse      = "COURSE"
	skLease       = "LEASE"
	skIdem        = "IDEM"
	skRegMark     = "REGMARK"
	skMailRate    = "MAILRATE"
)

// TimeLayout is the fixed-width UTC layout of times in sort keys and attributes, so that
// string order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a TimeLayout (or any RFC 3339) time.
func ParseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ShardOf is the shard of an enrollment id: its first character (a uniform base64 digit of
// the email hash) mod Shards.
func ShardOf(id string) int {
	if id == "" {
		return 0
	}
	return strings.IndexByte(b64, id[0]) % Shards
}

// EnrollmentKey is the primary key of an enrollment.
func EnrollmentKey(id string) (pk, sk string) {
	return pfxPerson + id[:16], pfxEnrollment + id[16:]
}

// PersonPK is the partition of everything about one email.
func PersonPK(email string) string { return pfxPerson + rollcall.PersonHash(email) }

// PersonUserKey is the primary key of the user item in an email's partition (the account
// behind that email, if any).
func PersonUserKey(email string) (pk, sk string) { return PersonPK(email), skUser }

// UserPK is the username-uniqueness item's partition.
func UserPK(username string) string { return pfxUser + rollcall.NormalizeUsername(username) }

// RegMarkShards is how many counters CreateUser spreads its registration count over, so that
// concurrent registrations rarely meet on one item in their transactions.
const RegMarkShards = 16

// RegMarkPK is one registration counter (item: PK, SK=REGMARK, n: users created in it).
func RegMarkPK(shard int) string { return fmt.Sprintf("%s%02d", pfxRegMark, shard) }

// CoursePK is a course's partition.
func CoursePK(id string) string { return pfxCourse + id }

// LeasePK is the partition of a course's bulk-write lease.
func LeasePK(courseID string) string { return pfxLease + courseID }

// LeaseShards is how many items a course's bulk-write lease is split over (SK LeaseSK(0..)).
// A large writer takes all of them, in order; the transaction of a small writer checks one,
// chosen by the enrollments it writes. DynamoDB cancels a transaction that names an item
// another ongoing transaction names (TransactionConflict), a ConditionCheck included, so one
// lease item checked by every writer of a course would make concurrent small writers of that
// course cancel each other; split, they rarely meet.
const LeaseShards = 4

// LeaseSK is shard k of a course's lease.
func LeaseSK(shard int) string { return fmt.Sprintf("%s#%d", skLease, shard) }

// CourseBlock is the block of a course enrollment's seq, and CourseShard the shard it lives in.
func CourseBlock(seq int64) int64 { return seq / BlockSize }

// CourseShard is the GSI1 shard of a block.
func CourseShard(block int64) int { return int(block % Shards) }

// SeqSK is the GSI1 sort key of a seq: zero-padded, so string order is number order.
func SeqSK(seq int64) string { return fmt.Sprintf("%012d", seq) }

// CourseIndexPK is one shard of a course in GSI1.
func CourseIndexPK(courseID string, shard int) string {
	return fmt.Sprintf("%s%s#%02d", pfxCourseIdx, courseID, shard)
}

// CourseStateIndexPK is one shard of a course's enrollments in one (stored) state in GSI4.
// The shard is by a hash of the id: a bulk request that invites 10,000 learners into one
// course spreads over all of them.
func CourseStateIndexPK(courseID string, state rollcall.State, shard int) string {
	return fmt.Sprintf("%s%s#%s#%02d", pfxState, courseID, state, shard)
}

// RecentIndexPK is one shard of registered enrollments by creation time in GSI2.
func RecentIndexPK(shard int) string { return fmt.Sprintf("%s%02d", pfxRecent, shard) }

// ExpiryIndexPK is one shard of open invitations by expiry in GSI2.
func ExpiryIndexPK(shard int) string { return fmt.Sprintf("%s%02d", pfxExpiry, shard) }

// TokenIndexPK finds an open invitation by its token hash in GSI3.
func TokenIndexPK(tokenHash string) string { return pfxToken + tokenHash }

// TimeSK is an index sort key: a time then the id, so ties order by id.
func TimeSK(t time.Time, id string) string { return FormatTime(t) + "#" + id }

// AuditSK orders an enrollment's audit entries by time (and version, for equal times).
func AuditSK(id string, at time.Time, version int64) string {
	return fmt.Sprintf("%s%s#%s#%012d", pfxAudit, id[16:], FormatTime(at), version)
}

// auditEntrySK is an entry's sort key: AuditSK, and for the further changes of one write
// (index > 0) a suffix that sorts them after the first, in order.
func auditEntrySK(id string, at time.Time, version int64, index int) string {
	sk := AuditSK(id, at, version)
	if index > 0 {
		sk += fmt.Sprintf("#%02d", index)
	}
	return sk
}

// AuditPrefix is the SK prefix of one enrollment's audit entries.
func AuditPrefix(id string) string { return pfxAudit + id[16:] + "#" }

// MailSentSK marks the mail numbered seq of an enrollment as sent.
func MailSentSK(id string, seq int64) string {
	return fmt.Sprintf("%s%s#%012d", pfxMailSent, id[16:], seq)
}

// DueIndexPK is one shard of the enrollments the schedule has work on, in GSI6; the sort key
// is TimeSK(when the work is due, id).
func DueIndexPK(shard int) string { return fmt.Sprintf("%s%02d", pfxDue, shard) }

// MailOwedIndexPK is one shard of the enrollments that owe mail, in GSI5; the sort key is
// TimeSK(owed at, id), so a Query reads the longest-owed first. The keys are written with the
// change that owes the mail and removed by the mailer (or the sweep) once it is dealt with.
func MailOwedIndexPK(shard int) string { return fmt.Sprintf("%s%02d", pfxMailOwed, shard) }

// JobMailOwedSK is a finished job's entry in the owed-mail index (in shard ShardOf(id); job ids
// are hex, so jobs fall in 12 of the 16 shards, which the sweep reads all of):
// TimeSK(finished at, "job:"+id), so the sweep tells a job's mail from an enrollment's.
func JobMailOwedSK(at time.Time, jobID string) string { return TimeSK(at, pfxOwedJob+jobID) }

// MailRatePK is the send-rate counter of one wall-clock second (Unix seconds), shared by every
// mailer instance.
func MailRatePK(unixSecond int64) string { return fmt.Sprintf("%s%d", pfxMailRate, unixSecond) }

// MailSweepLease is the lease name (LeasePK) that keeps two owed-mail sweeps from running at
// once. It cannot be a course key (neither "org/course/run" nor "course-v1:...").
const MailSweepLease = "~mail-sweep"

// Roster jobs (docs/data-model.md#roster-jobs).
const (
	pfxJob      = "JOB#"
	pfxJobList  = "JOBS#"
	jobListAll  = "JOBS*" // every job, for staff ('*' is in no username)
	skJob       = "JOB"
	pfxJobChunk = "CHUNK#"
	pfxJobRef   = "JREF#"
)

// JobPK is a job's partition: the job item and its chunks' results.
func JobPK(id string) string { return pfxJob + id }

// JobChunkSK is the sort key of a chunk's results: zero-padded, so string order is chunk order.
func JobChunkSK(index int) string { return fmt.Sprintf("%s%07d", pfxJobChunk, index) }

// JobListPK is the list of one user's jobs ("" for every job).
func JobListPK(owner string) string {
	if owner == "" {
		return jobListAll
	}
	return pfxJobList + rollcall.NormalizeUsername(owner)
}

// JobRefPK is the partition of the job-result pointers of one identifier as job rows give it
// (an email or a username): a hash of its lower-case form, so the key names nobody. The
// retire step finds the job chunks that name a person here, without a Scan.
func JobRefPK(identifier string) string {
	return pfxJobRef + rollcall.Hash16(rollcall.NormalizeEmail(identifier))
}

// JobRefSK names one job chunk: the job id, then the zero-padded chunk index.
func JobRefSK(jobID string, index int) string { return fmt.Sprintf("%s#%07d", jobID, index) }

// JobListSK orders a job list by creation, then id.
func JobListSK(created time.Time, id string) string { return FormatTime(created) + "#" + id }

// Email opt-in and organizations (docs/data-model.md).
const (
	pfxOptIn = "OPTIN#"
	pfxOrg   = "ORG#"
)

// OrgIndexPK is the GSI2 partition of an organization's courses (GSI2SK = the course id).
func OrgIndexPK(org string) string { return pfxOrg + strings.ToLower(org) }

// Retirement requests (docs/data-model.md#retirement).
const (
	pfxRetirement      = "RET#"
	skRetirement       = "RET"
	pfxRetirementQueue = "Q#"
)

// RetirementPK is the item of one retirement request, by its id (a keyed hash of the username).
func RetirementPK(id int64) string { return fmt.Sprintf("%s%d", pfxRetirement, id) }

// RetirementQueuePK is the GSI2 partition of the retirement requests in one state (few: no shards).
func RetirementQueuePK(state rollcall.RetirementState) string {
	return pfxRetirementQueue + string(state)
}
