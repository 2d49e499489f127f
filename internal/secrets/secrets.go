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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// Client is the part of the Secrets Manager API the loader uses.
type Client interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

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
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		// Never rotated: there is no previous version.
	case err != nil:
		return rollcall.KeyRing{}, err
	case prev.ID != cur.ID:
		ring.Previous = []rollcall.Key{prev}
	}
	return ring, nil
}

func version(ctx context.Context, c Client, secretID, stage string) (rollcall.Key, error) {
	out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(secretID), VersionStage: aws.String(stage)})
	if err != nil {
		return rollcall.Key{}, fmt.Errorf("signing secret %s: %w", stage, err)
	}
	value := aws.ToString(out.SecretString)
	if len(value) < MinSecretLen {
		return rollcall.Key{}, fmt.Errorf("signing secret %s: want at least %d characters, got %d", stage, MinSecretLen, len(value))
	}
	id := strings.ReplaceAll(aws.ToString(out.VersionId), "-", "")
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
