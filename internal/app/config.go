// Package app wires rollcall's functions: it reads configuration from the environment, builds
// the AWS clients, the store and the domain service every function needs, and starts a
// function's handler as a Lambda. The builders of HTTP functions live in internal/app/web, of
// the mail functions in internal/app/mail, the rest here; internal/app/functions is the table
// of all of them. functions/*/main.go and the local stack (infra/local) build handlers with the
// same builders, so a request takes the same path locally as in AWS.
package app

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/middleware"
)

// Config is everything a function needs from its environment.
type Config struct {
	Stage     string // "local" enables HS256 tokens and local endpoints
	TableName string
	Region    string

	// Local endpoints (empty in AWS).
	DynamoDBEndpoint string
	SESEndpoint      string

	JWTSecret   string // HS256, only when Stage == "local"
	JWKSURL     string
	JWTIssuer   string
	JWTAudience string
	// JWTMaxLifetime is the longest a token may live (JWT_MAX_LIFETIME: a Go duration such as
	// 24h, or seconds); 0 means auth.DefaultMaxLifetime.
	JWTMaxLifetime time.Duration

	// The signing key ring (cursors, invitation tokens): deployed, the Secrets Manager secret
	// SigningSecretARN names; on the local stage, SigningSecret (and SigningSecretPrevious, to
	// try a rotation) from the environment.
	SigningSecretARN      string
	SigningSecret         string
	SigningSecretPrevious string
	// The stable key (public enrollment ids, sealed idempotency answers; never rotated, ids
	// would change): deployed, the Secrets Manager secret IDKeySecretARN names; locally the
	// signing secret.
	IDKeySecretARN string
	PublicBaseURL  string // links in mail and in invitation_url
	SignupURL      string // where learners without an account sign up (SIGNUP_URL)
	// AdminDailyInvites caps a non-staff course admin's new invitations a day
	// (ADMIN_DAILY_INVITES; 0 = rollcall.DefaultAdminDailyInvites).
	AdminDailyInvites  int
	MailFrom           string
	MailTemplatePrefix string // "rollcall-<stage>-"
	MailSendRate       float64

	// Jobs configures the roster jobs' queue and uploads bucket (see demojob.go).
	Jobs JobsConfig

	// Authorize, when set, goes into the AWS SDK's APIOptions and authorizes every AWS call of
	// the function before it is sent: the local stack sets it to the function's IAM policy
	// from template.yaml (localiam), so a call AWS would refuse fails locally too. Nil in AWS.
	Authorize func(*middleware.Stack) error

	// Now is the clock; tests inject one. Nil means time.Now.
	Now func() time.Time
	// Logger; nil means JSON to stderr.
	Logger *slog.Logger
}

// DefaultLocalJWTSecret is the HS256 secret of the local stage unless JWT_SECRET is set.
const DefaultLocalJWTSecret = "local-dev-secret"

// DefaultLocalSigningSecret is the local stage's signing secret unless SIGNING_SECRET is set.
const DefaultLocalSigningSecret = "local-signing-secret-not-for-production"

// ConfigFromEnv reads the configuration a Lambda gets from template.yaml (or the local stack).
func ConfigFromEnv() (Config, error) {
	c := Config{
		Stage:                 getenv("STAGE", "prod"),
		TableName:             os.Getenv("TABLE_NAME"),
		Region:                getenv("AWS_REGION", "us-east-1"),
		DynamoDBEndpoint:      os.Getenv("DYNAMODB_ENDPOINT"),
		SESEndpoint:           os.Getenv("SES_ENDPOINT"),
		JWKSURL:               os.Getenv("JWT_JWKS_URL"),
		JWTIssuer:             os.Getenv("JWT_ISSUER"),
		JWTAudience:           os.Getenv("JWT_AUDIENCE"),
		SigningSecretARN:      os.Getenv("SIGNING_SECRET_ARN"),
		SigningSecret:         os.Getenv("SIGNING_SECRET"),
		SigningSecretPrevious: os.Getenv("SIGNING_SECRET_PREVIOUS"),
		IDKeySecretARN:        os.Getenv("ID_KEY_SECRET_ARN"),
		PublicBaseURL:         os.Getenv("PUBLIC_BASE_URL"),
		SignupURL:             os.Getenv("SIGNUP_URL"),
		MailFrom:              getenv("MAIL_FROM", "no-reply@rollcall.local"),
		MailSendRate:          10,
	}
	c.MailTemplatePrefix = getenv("MAIL_TEMPLATE_PREFIX", "rollcall-"+c.Stage+"-")
	c.Jobs = jobsConfigFromEnv()
	if c.Stage == "local" {
		c.JWTSecret = getenv("JWT_SECRET", DefaultLocalJWTSecret)
		if c.SigningSecret == "" && c.SigningSecretARN == "" {
			c.SigningSecret = DefaultLocalSigningSecret
		}
	}
	if v := os.Getenv("JWT_MAX_LIFETIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			n, nerr := strconv.ParseInt(v, 10, 64)
			d, err = time.Duration(n)*time.Second, nerr
		}
		if err != nil || d <= 0 {
			return c, fmt.Errorf("JWT_MAX_LIFETIME %q: want a positive duration (24h) or seconds", v)
		}
		c.JWTMaxLifetime = d
	}
	if v := os.Getenv("ADMIN_DAILY_INVITES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("ADMIN_DAILY_INVITES %q: want a positive integer", v)
		}
		c.AdminDailyInvites = n
	}
	if v := os.Getenv("MAIL_SEND_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			return c, fmt.Errorf("MAIL_SEND_RATE %q: want a positive number", v)
		}
		c.MailSendRate = r
	}
	return c, c.Validate()
}

// Validate checks what every function needs; each kind of function checks what it adds
// (web.CheckConfig: token verification; the mailer: its sender and links).
func (c Config) Validate() error {
	if c.TableName == "" {
		return fmt.Errorf("config: TABLE_NAME is required")
	}
	if c.SigningSecret != "" && c.Stage != "local" {
		// A secret in a deployed function's environment is readable by anyone who can read
		// the function's configuration.
		return fmt.Errorf("config: SIGNING_SECRET is for the local stage; deployed functions read SIGNING_SECRET_ARN")
	}
	if c.SigningSecret != "" && len(c.SigningSecret) < 16 {
		return fmt.Errorf("config: SIGNING_SECRET must be at least 16 characters")
	}
	if c.SignupURL != "" {
		if u, err := url.Parse(c.SignupURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("config: SIGNUP_URL %q is not an http(s) URL", c.SignupURL)
		}
	}
	return nil
}

func getenv(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

// localIDKey is the local stage's stable key (public enrollment ids, sealed idempotency
// answers): the signing secret itself. Deployed, it is its own Secrets Manager secret
// (IDKeySecretARN), which is never rotated: ids keyed with another key are other ids.
func (c Config) localIDKey() []byte { return []byte(c.SigningSecret) }

// LinkBase is the base of links a function puts in mail: PublicBaseURL (without a trailing
// slash), which a deployed function must have; locally it defaults to the gateway of make run
// (127.0.0.1 and $PORT, else 3000). what names the function in the error.
func (c Config) LinkBase(what string) (string, error) {
	if base := strings.TrimRight(c.PublicBaseURL, "/"); base != "" {
		return base, nil
	}
	if c.Stage != "local" {
		return "", fmt.Errorf("config: PUBLIC_BASE_URL is required for %s (links in mail)", what)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	return "http://127.0.0.1:" + port, nil
}
