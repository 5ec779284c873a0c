package keystore

import (
	"context"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Record is a stored key: its description and the hash of its secret.
type Record struct {
	bus.APIKey
	Hash         []byte
	RevokeReason string
}

// Filter selects keys for [Store.List].
type Filter struct {
	// Owner limits the list to one owner; "" lists every key.
	Owner string
	// IncludeRevoked lists revoked keys too.
	IncludeRevoked bool
	// Limit is the most keys returned.
	Limit int
}

// Store keeps API keys. Implementations are safe for concurrent use.
type Store interface {
	// Create stores a new key.
	Create(ctx context.Context, r Record) error
	// Get returns the key with id, or [ErrNotFound].
	Get(ctx context.Context, id string) (Record, error)
	// List returns keys matching f, newest first.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Revoke marks the key revoked at (once: a second revocation keeps the
	// first time) and returns it, or [ErrNotFound].
	Revoke(ctx context.Context, id, reason string, at time.Time) (Record, error)
	// TouchLastUsed records the last use of keys, never moving a time back.
	TouchLastUsed(ctx context.Context, used map[string]time.Time) error
	// Close releases the database.
	Close() error
}
