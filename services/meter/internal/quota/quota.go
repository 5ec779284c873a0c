// Package quota is meter's reserve/settle layer. [Quota] is what the
// micro endpoints call; requests reach it already validated.
//
// [Unlimited] grants everything and is used when no plan is configured.
// [KV] enforces plans atomically across any number of meter replicas:
// each subject (an API key, a user or a tenant) bound by a plan that sets
// at least one limit has one JetStream KV key holding its windows and
// open reservations, updated by compare-and-set on the key's revision and
// retried on conflict. A missing key is rebuilt from the ledger.
//
// Cost of a decision: one compare-and-set write per bound subject for a
// reserve and again for its settle; the state a replica wrote last is
// cached decoded, so a write needs no read unless another replica wrote
// in between (the conflict costs one read and a retry). Concurrent
// updates of one subject within a replica share one write (group commit,
// see [KV]), so a hot subject (a tenant) costs one write per batch, not
// per request. The stored value is a compact binary form with request ids
// kept as 64-bit hashes; JSON values written by earlier versions are
// still read, but earlier versions cannot read the binary form (they
// report [ErrCorruptState] for such a subject), so replicas sharing a
// bucket are upgraded together.
package quota

import (
	"context"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// Quota reserves and settles token budgets. Implementations are safe for
// concurrent use. A refusal is a normal ReserveResponse (Granted false);
// an error means the decision could not be made.
type Quota interface {
	// Reserve takes the request's input plus maximum output tokens from
	// every budget that binds the caller, or refuses naming the limit.
	Reserve(ctx context.Context, req bus.ReserveRequest) (bus.ReserveResponse, error)
	// Settle replaces the reservation of req.RequestID with the actual
	// usage and returns the caller's windows afterwards.
	Settle(ctx context.Context, req bus.SettleRequest) (bus.SettleResponse, error)
}

var _ Quota = Unlimited{}

// Unlimited is the [Quota] with no limits configured: it grants every
// reservation. It holds no state.
type Unlimited struct{}

// Reserve grants, with an empty window list.
func (Unlimited) Reserve(context.Context, bus.ReserveRequest) (bus.ReserveResponse, error) {
	return bus.ReserveResponse{Granted: true, Windows: []bus.QuotaWindow{}}, nil
}

// Settle returns an empty window list.
func (Unlimited) Settle(context.Context, bus.SettleRequest) (bus.SettleResponse, error) {
	return bus.SettleResponse{Windows: []bus.QuotaWindow{}}, nil
}
