package verifier

import (
	"context"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// Verifier turns one kind of credential into a verified identity. A refused
// credential is a *[Refusal]; any other error is a failure of the verifier
// itself (for example a JWKS that could not be fetched). Implementations are
// safe for concurrent use.
type Verifier interface {
	Verify(ctx context.Context, credential string) (identity.Identity, error)
}

// bearerPrefix is the RFC 6750 authorization scheme; it is matched
// case-insensitively.
const bearerPrefix = "bearer "

// TrimBearer returns the token with surrounding space and an optional
// "Bearer " prefix removed.
func TrimBearer(s string) string {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, strings.TrimSpace(bearerPrefix)) {
		return "" // the scheme alone: no credential
	}
	if len(s) >= len(bearerPrefix) && strings.EqualFold(s[:len(bearerPrefix)], bearerPrefix) {
		s = strings.TrimSpace(s[len(bearerPrefix):])
	}
	return s
}

// clip shortens caller-controlled text before it is quoted in a reason.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
