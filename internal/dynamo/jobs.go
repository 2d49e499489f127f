package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

var _ rollcall.JobStore = (*Store)(nil)

func encodeJob(j *rollcall.Job) item {
	it := key(JobPK(j.ID), skJob)
	it["id"] = str(j.ID)
	it["state"] = str(j.State)
	it["dry_run"] = boolean(j.DryRun)
	it["format"] = str(j.Format)
	it["created_by"] = str(j.CreatedBy)
	if j.CreatorEm != "" {
		it["creator_email"] = str(j.CreatorEm)
	}
	it["staff"] = boolean(j.Staff)
	it["created_at"] = str(FormatTime(j.CreatedAt))
	it["total"] = num(int64(j.Counts.Total))
	for _, k := range []string{"processed", "changed", "unchanged", "invalid", "errors", "chunks_done"} {
		it[k] = num(0)
	}
	it["chunks"] = num(int64(j.Chunks))
	it["auto_enroll"] = boolean(j.AutoEnroll)
	it["email_students"] = boolean(j.EmailStudents)
	if j.Reason != "" {
		it["reason"] = str(j.Reason)
	}
	for k, v := range map[string]string{"role": j.Role, "mode": j.Mode} {
		if v != "" {
			it[k] = str(v)
		}
	}
	if !j.EndAt.IsZero() {
		it["end_at"] = str(FormatTime(j.EndAt))
	}
	if j.InviteRegistered {
		it["invite_registered"] = boolean(true)
	}
	return it
}

func decodeJob(it item) *rollcall.Job {
	return &rollcall.Job{
		ID: getS(it, "id"), State: getS(it, "state"), DryRun: getBool(it, "dry_run"), Format: getS(it, "format"),
		CreatedBy: getS(it, "created_by"), CreatorEm: getS(it, "creator_email"), Staff: getBool(it, "staff"),
		CreatedAt: getTime(it, "created_at"), StartedAt: getTime(it, "started_at"), FinishedAt: getTime(it, "finished_at"),
		Counts: rollcall.JobCounts{Total: int(getN(it, "total")), Processed: int(getN(it, "processed")),
			Changed: int(getN(it, "changed")), Unchanged: int(getN(it, "unchanged")), Invalid: int(getN(it, "invalid")),
			Errors: int(getN(it, "errors"))},
		Chunks: int(getN(it, "chunks")), ChunksDone: int(getN(it, "chunks_done")),
		AutoEnroll: getBool(it, "auto_enroll"), EmailStudents: getBool(it, "email_students"), Reason: getS(it, "reason"),
		Role: getS(it, "role"), Mode: getS(it, "mode"), EndAt: getTime(it, "end_at"), InviteRegistered: getBool(it, "invite_registered"),
		Mailed: getBool(it, "mailed"),
	}
}

// CreateJob writes the job and its two list entries (the creator's and every job's) in one
// transaction.
func (s *Store) CreateJob(ctx context.Context, j *rollcall.Job) error {
	sk := JobListSK(j.CreatedAt, j.ID)
	entry := func(pk string) types.TransactWriteItem {
		it := key(pk, sk)
		it["job_id"] = str(j.ID)
		return types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: it}}
	}
	_, err := s.db().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: &s.Table, Item: encodeJob(j), ConditionExpression: aws.String("attribute_not_exists(PK)")}},
			entry(JobListPK(j.CreatedBy)),
			entry(JobListPK("")),
		},
	})
	return err
}

// GetJob reads a job; nil if there is none.
func (s *Store) GetJob(ctx context.Context, id string) (*rollcall.Job, error) {
	it, err := s.get(ctx, JobPK(id), skJob)
	if err != nil || it == nil {
		return nil, err
	}
	return decodeJob(it), nil
}

// ListJobs queries a job list newest first and reads the jobs it names.
func (s *Store) ListJobs(ctx context.Context, owner, after string, limit int) ([]*rollcall.Job, string, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(JobListPK(owner)),
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(int32(limit)),
	}
	if after != "" {
		in.ExclusiveStartKey = key(JobListPK(owner), after)
	}
	out, err := s.db().Query(ctx, in)
	if err != nil {
		return nil, "", err
	}
	keys := make([]item, 0, len(out.Items))
	for _, it := range out.Items {
		keys = append(keys, key(JobPK(getS(it, "job_id")), skJob))
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, "", err
	}
	byID := map[string]*rollcall.Job{}
	for _, it := range got {
		j := decodeJob(it)
		byID[j.ID] = j
	}
	jobs := make([]*rollcall.Job, 0, len(out.Items))
	for _, it := range out.Items {
		if j := byID[getS(it, "job_id")]; j != nil {
			jobs = append(jobs, j)
		}
	}
	next := ""
	if len(out.LastEvaluatedKey) > 0 {
		next = getS(out.LastEvaluatedKey, "SK")
	}
	return jobs, next, nil
}

func (s *Store) updateJob(ctx context.Context, in *dynamodb.UpdateItemInput) (bool, error) {
	in.TableName = &s.Table
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	_, err := s.db().UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// StartJob moves a queued job to running.
func (s *Store) StartJob(ctx context.Context, id string, at time.Time) error {
	_, err := s.updateJob(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(JobPK(id), skJob),
		UpdateExpression:          aws.String("SET #st = :running, started_at = :at"),
		ConditionExpression:       aws.String("#st = :queued"),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":running": str(rollcall.JobRunning), ":queued": str(rollcall.JobQueued), ":at": str(FormatTime(at))},
	})
	return err
}

// ChunkDone says whether a chunk's results are recorded.
func (s *Store) ChunkDone(ctx context.Context, jobID string, index int) (bool, error) {
	out, err := s.db().GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key(JobPK(jobID), JobChunkSK(index)),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("PK")})
	if err != nil {
		return false, err
	}
	return len(out.Item) > 0, nil
}

// JobClaimSK is the sort key of a chunk's claim (who runs it, until when).
func JobClaimSK(index int) string { return fmt.Sprintf("CLAIM#%07d", index) }

// ClaimChunk puts the chunk's claim unless a live one is there.
func (s *Store) ClaimChunk(ctx context.Context, jobID string, index int, owner string, now, until time.Time) (bool, error) {
	it := key(JobPK(jobID), JobClaimSK(index))
	it["owner"] = str(owner)
	it["until"] = str(FormatTime(until))
	it["ttl"] = num(until.Add(24 * time.Hour).Unix())
	_, err := s.db().PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: it,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR #u < :now"),
		ExpressionAttributeNames:  map[string]string{"#u": "until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": str(FormatTime(now))}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// ReleaseChunk deletes owner's claim of a chunk (no-op if another run holds it now).
func (s *Store) ReleaseChunk(ctx context.Context, jobID string, index int, owner string) error {
	_, err := s.db().DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.Table, Key: key(JobPK(jobID), JobClaimSK(index)),
		ConditionExpression:       aws.String("#o = :o"),
		ExpressionAttributeNames:  map[string]string{"#o": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": str(owner)}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	return err
}

// rowJSON is a row result as a chunk item keeps it (gzipped JSON in "results").
type rowJSON struct {
	Row   int        `json:"r"`
	C     string     `json:"c,omitempty"`
	I     string     `json:"i,omitempty"`
	B     *[5]string `json:"b,omitempty"` // enrollment allowed user auto_enroll cohort, as "1"/"0" and the cohort
	A     *[5]string `json:"a,omitempty"`
	WC    bool       `json:"wc,omitempty"`
	Inv   bool       `json:"inv,omitempty"`
	Error string     `json:"e,omitempty"`
	NoCB  bool       `json:"ncb,omitempty"` // before.cohort is null
	NoCA  bool       `json:"nca,omitempty"` // after.cohort is null
	W     bool       `json:"w,omitempty"`   // the row changed its enrollment
	WR    bool       `json:"wr,omitempty"`  // the job named a role: br and ar are the roles (absent: null)
	BR    *string    `json:"br,omitempty"`
	AR    *string    `json:"ar,omitempty"`
}

func snapOut(sn rollcall.Snapshot) (*[5]string, bool) {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	out := [5]string{b(sn.Enrollment), b(sn.Allowed), b(sn.User), b(sn.AutoEnroll), ""}
	if sn.Cohort == nil {
		return &out, true
	}
	out[4] = *sn.Cohort
	return &out, false
}

func snapIn(a *[5]string, noCohort bool) rollcall.Snapshot {
	if a == nil {
		return rollcall.Snapshot{}
	}
	sn := rollcall.Snapshot{Enrollment: a[0] == "1", Allowed: a[1] == "1", User: a[2] == "1", AutoEnroll: a[3] == "1"}
	if !noCohort {
		c := a[4]
		sn.Cohort = &c
	}
	return sn
}

// RecordChunk puts the chunk's results (on condition that they are not there yet) and adds
// its counts to the job, in one transaction.
func (s *Store) RecordChunk(ctx context.Context, jobID string, index int, results []rollcall.RowResult, c rollcall.JobCounts) (bool, error) {
	rows := make([]rowJSON, len(results))
	for i, r := range results {
		rj := rowJSON{Row: r.Row, C: r.CourseID, I: r.Identifier, WC: r.WithCohort, Inv: r.InvalidIdentifier, Error: r.Error}
		if r.Error == "" && !r.InvalidIdentifier {
			rj.B, rj.NoCB = snapOut(r.Before)
			rj.A, rj.NoCA = snapOut(r.After)
			if r.WithRole {
				rj.WR, rj.BR, rj.AR = true, r.Before.Role, r.After.Role
			}
			rj.W = r.Wrote
		}
		rows[i] = rj
	}
	gz, err := encodeChunkRows(rows)
	if err != nil {
		return false, err
	}
	chunk := key(JobPK(jobID), JobChunkSK(index))
	chunk["results"] = &types.AttributeValueMemberB{Value: gz}
	chunk["n"] = num(int64(len(results)))
	_, err = s.db().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: &s.Table, Item: chunk, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
			{Update: &types.Update{TableName: &s.Table, Key: key(JobPK(jobID), skJob),
				UpdateExpression:    aws.String("ADD #p :p, #c :c, #u :u, #i :i, #e :e, chunks_done :one"),
				ConditionExpression: aws.String("attribute_exists(PK)"),
				ExpressionAttributeNames: map[string]string{"#p": "processed", "#c": "changed", "#u": "unchanged",
					"#i": "invalid", "#e": "errors"},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":p": num(int64(c.Processed)), ":c": num(int64(c.Changed)), ":u": num(int64(c.Unchanged)),
					":i": num(int64(c.Invalid)), ":e": num(int64(c.Errors)), ":one": num(1),
				}}},
		},
	})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return false, nil // recorded before (or the job is gone)
			}
		}
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// FinishJob sets a final state while the job is queued or running; a success state also
// needs every chunk done.
func (s *Store) FinishJob(ctx context.Context, id, state string, at time.Time) (bool, error) {
	cond := "#st IN (:queued, :running)"
	set := "SET #st = :state, finished_at = :at"
	vals := map[string]types.AttributeValue{":state": str(state), ":at": str(FormatTime(at)),
		":queued": str(rollcall.JobQueued), ":running": str(rollcall.JobRunning)}
	if state == rollcall.JobSucceeded || state == rollcall.JobPartiallySucceeded {
		cond += " AND chunks_done >= chunks"
		// The job_finished mail is owed from now: the job goes into the owed-mail index, as
		// an enrollment change that owes mail does, so that the sweep sends it if the
		// stream gives its record up. MarkJobMailed takes it out.
		set += ", mail_owed_at = :at, GSI5PK = :opk, GSI5SK = :osk"
		vals[":opk"], vals[":osk"] = str(MailOwedIndexPK(ShardOf(id))), str(JobMailOwedSK(at, id))
	}
	return s.updateJob(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(JobPK(id), skJob),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: vals,
	})
}

// MarkJobMailed records the job_finished mail (the mailer's marker for it: a redelivered
// stream record of the job's end finds it and mails nobody again) and takes the job out of the
// owed-mail index. A job that is gone stays gone.
func (s *Store) MarkJobMailed(ctx context.Context, id string) error {
	_, err := s.updateJob(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(JobPK(id), skJob),
		UpdateExpression:          aws.String("SET mailed = :t REMOVE mail_owed_at, GSI5PK, GSI5SK"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": boolean(true)},
	})
	return err
}

// JobResults reads recorded chunks from `from` on, in order.
func (s *Store) JobResults(ctx context.Context, jobID string, from, limit int) ([]rollcall.ChunkResults, error) {
	out, err := s.db().Query(ctx, &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(JobPK(jobID)), ":lo": str(JobChunkSK(from)), ":hi": str(pfxJobChunk + "~"),
		},
		Limit:          aws.Int32(int32(limit)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	res := make([]rollcall.ChunkResults, 0, len(out.Items))
	for _, it := range out.Items {
		sk := getS(it, "SK")
		idx, err := strconv.Atoi(sk[len(pfxJobChunk):])
		if err != nil {
			return nil, fmt.Errorf("job %s: bad chunk key %q", jobID, sk)
		}
		rows, err := chunkRows(it)
		if err != nil {
			return nil, fmt.Errorf("job %s chunk %d: %w", jobID, idx, err)
		}
		cr := rollcall.ChunkResults{Index: idx, Results: make([]rollcall.RowResult, len(rows))}
		for i, r := range rows {
			cr.Results[i] = rollcall.RowResult{Row: r.Row, CourseID: r.C, Identifier: r.I, WithCohort: r.WC, Wrote: r.W,
				InvalidIdentifier: r.Inv, Error: r.Error, Before: snapIn(r.B, r.NoCB), After: snapIn(r.A, r.NoCA)}
			if r.WR {
				cr.Results[i].WithRole = true
				cr.Results[i].Before.Role, cr.Results[i].After.Role = r.BR, r.AR
			}
		}
		res = append(res, cr)
	}
	return res, nil
}

// encodeChunkRows is the "results" attribute of a chunk item: its rows as gzipped JSON.
func encodeChunkRows(rows []rowJSON) ([]byte, error) {
	raw, err := json.Marshal(rows)
	if err != nil {
		return nil, err
	}
	return gzipBytes(raw)
}

// chunkRows reads a chunk item's rows.
func chunkRows(it item) ([]rowJSON, error) {
	b, _ := it["results"].(*types.AttributeValueMemberB)
	if b == nil {
		return nil, errors.New("no results")
	}
	raw, err := gunzip(b.Value)
	if err != nil {
		return nil, err
	}
	var rows []rowJSON
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, err
	}
	return rows, nil
}
