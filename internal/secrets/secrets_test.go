package secrets

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// versions is a fake Secrets Manager holding staged versions of one secret.
type versions map[string]Value

func (v versions) GetSecretValue(_ context.Context, _, stage string) (Value, error) {
	if out, ok := v[stage]; ok {
		return out, nil
	}
	return Value{}, ErrNotFound
}

func ver(id, value string) Value { return Value{VersionID: id, SecretString: value} }

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
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
}
