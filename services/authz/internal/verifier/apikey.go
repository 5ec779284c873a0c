package verifier

import (
	"context"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// APIKeys verifies API keys. API keys are not enabled yet: every key is
// refused with [ErrAPIKeysDisabled]. The store of hashed, scoped, revocable
// keys will live behind this type.
type APIKeys struct{}

var _ Verifier = APIKeys{}

// Verify refuses every key.
func (APIKeys) Verify(_ context.Context, key string) (identity.Identity, error) {
	if key == "" {
		return identity.Identity{}, refuse(ErrNoCredential, "no credential given")
	}
	return identity.Identity{}, refuse(ErrAPIKeysDisabled, "API keys are not enabled on this gateway")
}
