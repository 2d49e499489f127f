// Package keys reads the keys of the functions that sign or show ids from Secrets Manager,
// once per cold start (internal/secrets' small GetSecretValue client, not the SDK module: see
// secrets.HTTPClient). On the local stage app.Build has set both keys from SIGNING_SECRET.
package keys

import (
	"context"
	"fmt"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/secrets"
)

// Stable reads the stable key (public enrollment ids, sealed idempotency answers), for the
// functions that show enrollment ids or keep answers: from the Secrets Manager secret
// ID_KEY_SECRET_ARN names.
func Stable(ctx context.Context, d *app.Deps) error {
	if len(d.IDKey()) > 0 {
		return nil
	}
	if d.Config.IDKeySecretARN == "" {
		return fmt.Errorf("config: ID_KEY_SECRET_ARN is required (SIGNING_SECRET on the local stage)")
	}
	key, err := secrets.LoadStable(ctx, secrets.NewHTTPClient(d.AWS), d.Config.IDKeySecretARN)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d.SetIDKey(key)
	return nil
}

// Signing reads the signing key ring into the service, for the functions that sign or verify
// (template.yaml gives only them SIGNING_SECRET_ARN and the right to read it).
func Signing(ctx context.Context, d *app.Deps) (rollcall.KeyRing, error) {
	if ring := d.Service.Keys; len(ring.Current.Secret) > 0 {
		return ring, nil
	}
	if d.Config.SigningSecretARN == "" {
		return rollcall.KeyRing{}, fmt.Errorf("config: SIGNING_SECRET_ARN is required (SIGNING_SECRET on the local stage)")
	}
	ring, err := secrets.Load(ctx, secrets.NewHTTPClient(d.AWS), d.Config.SigningSecretARN)
	if err != nil {
		return ring, fmt.Errorf("config: %w", err)
	}
	d.Service.Keys = ring
	return ring, nil
}
