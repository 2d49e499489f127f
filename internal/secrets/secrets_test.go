package secrets

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// versions is a fake Secrets Manager holding staged versions of one secret.
type versions map[string]*secretsmanager.GetSecretValueOutput

func (v versions) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if out, ok := v[aws.ToString(in.VersionStage)]; ok {
		return out, nil
	}
	return nil, &types.ResourceNotFoundException{Message: aws.String("no such version")}
}

func ver(id, value string) *secretsmanager.GetSecretValueOutput {
	return &secretsmanager.GetSecretValueOutput{VersionId: aws.String(id), SecretString: aws.String(value)}
}

func TestLoadCurrentAndPrevious(t *testing.T) {
	cur := strings.Repeat("c", 64)
	prev := strings.Repeat("p", 64)
	ring, err := Load(context.Background(), versions{
		"AWSCURRENT":  ver("1b2c3d4e-0000-4000-8000-000000000001", cur),
		"AWSPREVIOUS": ver("9f8e7d6c-0000-4000-8000-000000000002", prev),
	}, "arn:secret")
	if err != nil {
		t.Fatal(err)
	}
	if ring.Current.ID != "1b2c3d4e" || string(ring.Current.Secret) != cur {
		t.Fatalf("current = %q %q", ring.Current.ID, ring.Current.Secret)
	}
	if len(ring.Previous) != 1 || ring.Previous[0].ID != "9f8e7d6c" || string(ring.Previous[0].Secret) != prev {
		t.Fatalf("previous = %+v", ring.Previous)
	}
}

func TestLoadNeverRotated(t *testing.T) {
	ring, err := Load(context.Background(), versions{"AWSCURRENT": ver("aaaa1111-2222", strings.Repeat("x", 40))}, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.Previous) != 0 || ring.Current.ID != "aaaa1111" {
		t.Fatalf("ring = %+v", ring)
	}
}

func TestLoadRefusesShortSecretAndMissingSecret(t *testing.T) {
	if _, err := Load(context.Background(), versions{"AWSCURRENT": ver("a", "short")}, "s"); err == nil {
		t.Fatal("a 5-character secret was accepted")
	}
	_, err := Load(context.Background(), versions{}, "s")
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("missing secret: %v", err)
	}
}
