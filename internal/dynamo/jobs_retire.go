package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// Retiring a person from roster jobs: the per-person pointers a recorded chunk leaves, and
// the retire step that follows them to rewrite the chunks and the jobs the person created.

// WriteJobRefs writes a chunk's pointer items (docs/data-model.md#roster-jobs): one per
// distinct identifier of its rows that could name a person (an email, or a valid username), so
// that retiring that person finds the chunk by key. A person in several rows of the chunk
// (several courses) gets one pointer. The job service writes them before it records the
// chunk's results, so a recorded chunk always has them (a run that stops between the two
// leaves pointers to a chunk not recorded yet; its next delivery writes the same ones again).
func (s *Store) WriteJobRefs(ctx context.Context, jobID string, index int, identifiers []string) error {
	if err := s.batchWrite(ctx, jobRefs(jobID, index, identifiers), false); err != nil {
		return fmt.Errorf("job refs: %w", err)
	}
	return nil
}

func jobRefs(jobID string, index int, identifiers []string) []item {
	seen := map[string]bool{}
	var out []item
	for _, ident := range identifiers {
		id := strings.TrimSpace(ident)
		if id == "" || (!strings.Contains(id, "@") && !rollcall.ValidUsername(id)) {
			continue
		}
		pk := JobRefPK(id)
		if seen[pk] {
			continue
		}
		seen[pk] = true
		it := key(pk, JobRefSK(jobID, index))
		it["job_id"] = str(jobID)
		it["chunk"] = num(int64(index))
		out = append(out, it)
	}
	return out
}

// retireJobResults is the job part of the retire step: it reads the pointers of the person's
// email and username, rewrites each chunk they name with the person replaced by to, and then
// deletes those pointers. It returns how many chunks it rewrote. A pointer to a chunk not
// recorded yet, of a job still running, stays for a repeat of the step (its run may record
// it later); of a finished job, it goes.
func (s *Store) retireJobResults(ctx context.Context, from, to rollcall.Person) (int, error) {
	type ref struct {
		job   string
		chunk int
	}
	var refs []ref
	ptrs := map[ref][]item{}
	for _, ident := range []string{from.Email, from.Username} {
		if strings.TrimSpace(ident) == "" {
			continue
		}
		err := s.queryAll(ctx, s.partitionQuery(JobRefPK(ident)), func(it item) bool {
			r := ref{getS(it, "job_id"), int(getN(it, "chunk"))}
			if ptrs[r] == nil {
				refs = append(refs, r)
			}
			ptrs[r] = append(ptrs[r], key(getS(it, "PK"), getS(it, "SK")))
			return true
		})
		if err != nil {
			return 0, fmt.Errorf("job refs: %w", err)
		}
	}
	n := 0
	var settled []item
	for _, r := range refs {
		rewrote, done, err := s.retireChunk(ctx, r.job, r.chunk, from, to)
		if err != nil {
			return n, err
		}
		if rewrote {
			n++
		}
		if done {
			settled = append(settled, ptrs[r]...)
		}
	}
	if err := s.batchWrite(ctx, settled, true); err != nil {
		return n, fmt.Errorf("job refs: %w", err)
	}
	return n, nil
}

// retireChunk rewrites one chunk's rows that name from (the identifier, and the identifier
// in a row's error) to name to, with a conditional put on the chunk's rewrite version, so that
// two retirements rewriting one chunk at once both land. done is false only for a chunk not
// recorded yet of a job that is still running.
func (s *Store) retireChunk(ctx context.Context, jobID string, index int, from, to rollcall.Person) (rewrote, done bool, err error) {
	for attempt := 0; attempt < 8; attempt++ {
		it, err := s.get(ctx, JobPK(jobID), JobChunkSK(index))
		if err != nil {
			return false, false, fmt.Errorf("retire job chunk: %w", err)
		}
		if it == nil {
			j, err := s.GetJob(ctx, jobID)
			if err != nil {
				return false, false, fmt.Errorf("retire job chunk: %w", err)
			}
			return false, j == nil || rollcall.JobFinal(j.State), nil
		}
		rows, err := chunkRows(it)
		if err != nil {
			return false, false, fmt.Errorf("retire job %s chunk %d: %w", jobID, index, err)
		}
		changed := false
		for i := range rows {
			if rep := retiredIdentifier(rows[i].I, from, to); rep != "" {
				if rows[i].Error != "" {
					rows[i].Error = strings.ReplaceAll(rows[i].Error, rows[i].I, rep)
				}
				rows[i].I = rep
				changed = true
			}
		}
		if !changed {
			return false, true, nil
		}
		gz, err := encodeChunkRows(rows)
		if err != nil {
			return false, false, err
		}
		prev := getN(it, "rv")
		it["results"] = &types.AttributeValueMemberB{Value: gz}
		it["rv"] = num(prev + 1)
		in := &dynamodb.PutItemInput{TableName: &s.Table, Item: it}
		if prev == 0 {
			in.ConditionExpression = aws.String("attribute_exists(PK) AND attribute_not_exists(rv)")
		} else {
			in.ConditionExpression = aws.String("rv = :rv")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":rv": num(prev)}
		}
		_, err = s.db().PutItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			continue // another retirement rewrote it meanwhile: read it again
		}
		if err != nil {
			return false, false, fmt.Errorf("retire job chunk: %w", err)
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("retire job %s chunk %d: it kept changing", jobID, index)
}

// retiredIdentifier is what a row's identifier becomes when from retires: to's email for
// from's email, to's username for from's username; "" if it names someone else.
func retiredIdentifier(ident string, from, to rollcall.Person) string {
	n := rollcall.NormalizeEmail(ident)
	switch {
	case n == "":
		return ""
	case from.Email != "" && n == rollcall.NormalizeEmail(from.Email):
		return to.Email
	case from.Username != "" && n == rollcall.NormalizeEmail(from.Username):
		return to.Username
	}
	return ""
}

// retireJobCreator moves the jobs that from created to to: the job items' created_by and
// creator_email, and the entries of from's job list (JOBS#<username>) to to's. Each job is
// updated before its entry moves (put the new entry, then delete the old), so a repeat
// finds in the old list whatever is left to do. It returns how many jobs it moved.
func (s *Store) retireJobCreator(ctx context.Context, from, to rollcall.Person) (int, error) {
	if from.Username == "" || !rollcall.ValidUsername(from.Username) {
		return 0, nil
	}
	var entries []item
	err := s.queryAll(ctx, s.partitionQuery(JobListPK(from.Username)), func(it item) bool {
		entries = append(entries, it)
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("job list: %w", err)
	}
	var puts, dels []item
	for _, it := range entries {
		id := getS(it, "job_id")
		_, err := s.updateJob(ctx, &dynamodb.UpdateItemInput{
			Key:                 key(JobPK(id), skJob),
			UpdateExpression:    aws.String("SET created_by = :u, creator_email = :e"),
			ConditionExpression: aws.String("attribute_exists(PK)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":u": str(to.Username), ":e": str(to.Email)},
		})
		if err != nil {
			return 0, fmt.Errorf("job %s: %w", id, err)
		}
		n := key(JobListPK(to.Username), getS(it, "SK"))
		n["job_id"] = str(id)
		puts = append(puts, n)
		dels = append(dels, key(getS(it, "PK"), getS(it, "SK")))
	}
	if err := s.batchWrite(ctx, puts, false); err != nil {
		return 0, fmt.Errorf("job list: %w", err)
	}
	if err := s.batchWrite(ctx, dels, true); err != nil {
		return 0, fmt.Errorf("job list: %w", err)
	}
	return len(entries), nil
}
