package localiam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// MiddlewareID is the id of the check in the SDK's middleware stack.
const MiddlewareID = "LocalIAMAuthorize"

// Middleware returns the SDK option (for aws.Config.APIOptions) that authorizes every call of
// a client against the policy before it is sent. A refused call fails with the error AWS
// returns (an AccessDeniedException API error) and is not retried.
func (p *Policy) Middleware() func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		// After the SDK's own input validation (a malformed call fails as it would in AWS,
		// client-side) and before anything is signed or sent.
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc(MiddlewareID, p.handle), middleware.After)
	}
}

func (p *Policy) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (out middleware.InitializeOutput, metadata middleware.Metadata, err error) {
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	if err := p.Authorize(service, op, in.Parameters, awsmiddleware.GetRegion(ctx)); err != nil {
		return middleware.InitializeOutput{}, metadata, err
	}
	return next.HandleInitialize(ctx, in)
}

// Authorize decides one SDK call: nil when every authorization it takes is allowed, else the
// AccessDenied error AWS would return for the first one refused.
func (p *Policy) Authorize(service, op string, input any, region string) error {
	reqs, err := Requests(service, op, input, region)
	if err != nil {
		var um *UnmappedError
		if errors.As(err, &um) {
			return p.denied(service, Request{Action: strings.ToLower(strings.ReplaceAll(service, " ", "")) + ":" + op, Resource: "(unknown)"},
				ImplicitDeny, um.Error())
		}
		return err
	}
	for _, r := range reqs {
		if d := p.Decide(r); d != Allow {
			return p.denied(service, r, d, "")
		}
	}
	return nil
}

func (p *Policy) denied(service string, r Request, d Decision, why string) error {
	code, status := "AccessDeniedException", http.StatusBadRequest
	switch service {
	case "S3":
		code, status = "AccessDenied", http.StatusForbidden
	case "SQS":
		code, status = "AccessDenied", http.StatusForbidden
	case "SESv2":
		status = http.StatusForbidden
	}
	reason := "because no identity-based policy allows the " + r.Action + " action"
	if d == ExplicitDeny {
		reason = "with an explicit deny in an identity-based policy"
	}
	msg := fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/%s-role/%s is not authorized to perform: %s on resource: %s %s",
		samtemplate.LocalAccountID, p.Function, p.Function, r.Action, r.Resource, reason)
	if why != "" {
		msg += " (" + why + ")"
	} else {
		msg += " (local IAM check of " + p.Function + "'s Policies in " + samtemplate.FileName + ")"
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{
				StatusCode: status, Status: http.StatusText(status), Header: http.Header{}, Body: http.NoBody,
			}},
			Err: &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient},
		},
		RequestID: "local-iam",
	}
}

// IsAccessDenied reports whether err is an AccessDenied API error (from AWS or this package).
func IsAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied")
}

// Roles holds the policy of every function of a template, evaluated for the local stack.
type Roles struct {
	policies map[string]*Policy
}

// LocalValues are the values the local stack evaluates policies with: the stage, the table's
// name and the sender (MailFrom, which a condition on ses:FromAddress may use).
func LocalValues(stage, table, mailFrom string) map[string]string {
	return map[string]string{"Stage": stage, "Table": table, "MailFrom": mailFrom}
}

// FromTemplate evaluates the policies of every function of tpl (see
// samtemplate.FunctionPolicy). A policy that cannot be evaluated is an error.
func FromTemplate(tpl *samtemplate.Template, values map[string]string) (*Roles, error) {
	r := &Roles{policies: map[string]*Policy{}}
	for _, f := range tpl.Functions() {
		sts, err := tpl.FunctionPolicy(f.LogicalID, values)
		if err != nil {
			return nil, err
		}
		p, err := New(f.LogicalID, sts)
		if err != nil {
			return nil, err
		}
		r.policies[f.LogicalID] = p
	}
	return r, nil
}

// Policy returns a function's policy; a function the template does not have gets one that
// allows nothing.
func (r *Roles) Policy(logicalID string) *Policy {
	if p, ok := r.policies[logicalID]; ok {
		return p
	}
	return &Policy{Function: logicalID}
}

// Middleware is Policy(logicalID).Middleware().
func (r *Roles) Middleware(logicalID string) func(*middleware.Stack) error {
	return r.Policy(logicalID).Middleware()
}
