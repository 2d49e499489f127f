// Package jobs builds JobsFunction, the HTTP API of roster jobs and uploads: the only job
// function that links the uploads bucket and the HTTP adapter (JobWorkerFunction is in
// internal/app/jobworker).
package jobs

import (
	"context"
	"fmt"
	"net/http"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/app/jobsvc"
	"github.com/rollcall/rollcall/internal/app/web"
	"github.com/rollcall/rollcall/internal/awscall"
	"github.com/rollcall/rollcall/internal/httpapi"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/uploads"
)

// JobsFunction builds the HTTP function of roster jobs and uploads.
func JobsFunction(ctx context.Context, c app.Config) (any, error) {
	if c.Jobs.QueueURL == "" {
		return nil, fmt.Errorf("config: JOB_QUEUE_URL is required for roster jobs")
	}
	return web.FunctionWithDeps(ctx, c, "JobsFunction", true, true, func(d *app.Deps, api *httpapi.API) (map[string]http.HandlerFunc, error) {
		return (&httpapi.JobsAPI{API: api, Jobs: NewJobService(d)}).JobOps(), nil
	})
}

// NewJobService is the roster job service of JobsFunction: the job queue and, when the stack
// has one, the uploads bucket (uploads' own S3 client, not the SDK's S3 module: see
// internal/awscall).
func NewJobService(d *app.Deps) *rollcall.JobService {
	js := jobsvc.New(d)
	if jc := d.Config.Jobs; jc.UploadsBucket != "" {
		client := uploads.NewClient(awscall.New(d.AWS, "", "", d.Config.Authorize))
		js.Uploads = &uploads.Store{Client: client, Bucket: jc.UploadsBucket, Endpoint: jc.S3Endpoint, Now: d.Config.Now}
	}
	return js
}
