package rollcall

import "context"

// Metrics receives counts of what the service did; deployed, they become CloudWatch metrics
// (embedded metric format), so operators can graph and alarm on enrollments changed and
// expiry progress without reading logs.
type Metrics interface {
	Record(ctx context.Context, counts map[string]float64)
}

func (s *Service) record(ctx context.Context, counts map[string]float64) {
	if s.Metrics != nil {
		s.Metrics.Record(ctx, counts)
	}
}

// BulkEnroll runs a bulk enroll request (see bulkEnroll) and records how many enrollments it
// changed.
func (s *Service) BulkEnroll(ctx context.Context, actor Actor, f Fields) (*BulkResponse, error) {
	resp, err := s.bulkEnroll(ctx, actor, f)
	if err == nil {
		s.record(ctx, resp.counts())
	}
	return resp, err
}

// counts tallies a response's results: changed (the enrollment was changed), unchanged,
// invalid identifiers and failed items.
func (r *BulkResponse) counts() map[string]float64 {
	var changed, unchanged, invalid, failed float64
	for _, c := range r.Courses {
		for _, res := range c.Results {
			switch {
			case res.InvalidIdentifier:
				invalid++
			case res.Error:
				failed++
			case !res.Changed:
				unchanged++
			default:
				changed++
			}
		}
	}
	return map[string]float64{"EnrollmentsChanged": changed, "EnrollmentsUnchanged": unchanged,
		"InvalidIdentifiers": invalid, "EnrollmentErrors": failed}
}

func (a Snapshot) same(b Snapshot) bool {
	sameCohort := (a.Cohort == nil) == (b.Cohort == nil) && (a.Cohort == nil || *a.Cohort == *b.Cohort)
	return a.Enrollment == b.Enrollment && a.Allowed == b.Allowed && a.User == b.User && a.AutoEnroll == b.AutoEnroll && sameCohort
}
