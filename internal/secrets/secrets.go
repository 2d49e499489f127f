// Package secrets reads rollcall's signing key ring from AWS Secrets Manager.
//
// The signing secret is one Secrets Manager secret (SigningSecret in template.yaml). Rotating
// it (`aws secretsmanager put-secret-value`) makes the new value AWSCURRENT and the old one
// AWSPREVIOUS; a function reads both once per cold start, signs with the current one and
// verifies with either, so list cursors and invitation links made before a rotation keep
// working until they expire. A key's id is a prefix of its version id.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Client reads one staged version of a secret (Secrets Manager's GetSecretValue); a version
// that does not exist is ErrNotFound. HTTPClient is the one the functions use.
type Client interface {
	GetSecretValue(ctx context.Context, secretID, versionStage string) (Value, error)
}

// Value is a version of a secret.
type Value struct {
	VersionID    string
	SecretString string
}

// ErrNotFound is Secrets Manager's ResourceNotFoundException: no such secret or version.
var ErrNotFound = errors.New("secrets manager: resource not found")

// MinSecretLen is the shortest signing secret accepted (template.yaml generates 64 characters).
const MinSecretLen = 32

// keyIDLen is how much of a version id (a UUID) names a key: short, as it is stamped into
// every invitation's token nonce, and unique among the two versions that are ever staged.
const keyIDLen = 8

// Load reads the AWSCURRENT and, if there is one, the AWSPREVIOUS version of the secret.
func Load(ctx context.Context, c Client, secretID string) (rollcall.KeyRing, error) {
	cur, err := version(ctx, c, secretID, "AWSCURRENT")
	if err != nil {
		return rollcall.KeyRing{}, err
	}
	ring := rollcall.KeyRing{Current: cur}
	prev, err := version(ctx, c, secretID, "AWSPREVIOUS")
	switch {
	case errors.Is(err, ErrNotFound):
		// Never rotated: there is no previous version.
	case err != nil:
		return rollcall.KeyRing{}, err
	case prev.ID != cur.ID:
		ring.Previous = []rollcall.Key{prev}
	}
	return ring, nil
}

func version(ctx context.Context, c Client, secretID, stage string) (rollcall.Key, error) {
	out, err := c.GetSecretValue(ctx, secretID, stage)
	if err != nil {
		return rollcall.Key{}, fmt.Errorf("signing secret %s: %w", stage, err)
	}
	value := out.SecretString
	if len(value) < MinSecretLen {
		return rollcall.Key{}, fmt.Errorf("signing secret %s: want at least %d characters, got %d", stage, MinSecretLen, len(value))
	}
	id := strings.ReplaceAll(out.VersionID, "-", "")
	if len(id) > keyIDLen {
		id = id[:keyIDLen]
	}
	if id == "" {
		id = rollcall.LocalKeyID([]byte(value))
	}
	return rollcall.Key{ID: id, Secret: []byte(value)}, nil
}

// LoadStable reads the current value of a secret that is never rotated (the key of public
// enrollment ids: ids keyed with another key are other ids).
func LoadStable(ctx context.Context, c Client, secretID string) ([]byte, error) {
	k, err := version(ctx, c, secretID, "AWSCURRENT")
	if err != nil {
		return nil, err
	}
	return k.Secret, nil
}
