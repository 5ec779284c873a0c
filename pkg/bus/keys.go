package bus

import (
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// OpInvoke is the check operation "may this caller use this model": a
// [ModelCheckRequest] sent to [Subjects.AuthzCheck]. Its reply is a
// [CheckResponse].
const OpInvoke = "invoke"

// ModelCheckRequest asks authz whether Identity may invoke Model. It is sent
// to [Subjects.AuthzCheck] like a [CheckRequest] (it has the same identity
// and op members), with Op set to [OpInvoke].
type ModelCheckRequest struct {
	Identity identity.Identity `json:"identity"`
	Op       string            `json:"op"`
	Model    string            `json:"model"`
}

// APIKey describes a stored API key. The secret is never part of it: only
// [KeyCreateResponse] carries the secret, once.
type APIKey struct {
	// ID is the key's public id (it appears inside the key itself and in
	// [identity.Identity.KeyID]).
	ID string `json:"id"`
	// Name is a label chosen by whoever created the key.
	Name string `json:"name,omitempty"`
	// Owner is the sub the key acts for; Issuer qualifies it.
	Owner  string `json:"owner"`
	Issuer string `json:"issuer,omitempty"`
	// Tenant and Plan become the identity's tenant and plan.
	Tenant string `json:"tenant,omitempty"`
	Plan   string `json:"plan,omitempty"`
	// Groups become the identity's groups.
	Groups []string `json:"groups,omitempty"`
	// Models lists the model ids or globs the key may invoke; empty means
	// whatever the plan and groups allow.
	Models []string `json:"models,omitempty"`
	// Namespaces lists the channel namespaces the key may touch; empty means
	// whatever the channel policy allows.
	Namespaces []string  `json:"namespaces,omitempty"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt,omitzero"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
}

// KeyCreateRequest asks authz to create an API key. Caller is who asks: a
// Gatehouse service or admin tool (Kind service), or a verified user the
// edge forwards, who must be in the configured admin group.
type KeyCreateRequest struct {
	Caller     identity.Identity `json:"caller"`
	Name       string            `json:"name,omitempty"`
	Owner      string            `json:"owner"`
	Issuer     string            `json:"issuer,omitempty"`
	Tenant     string            `json:"tenant,omitempty"`
	Plan       string            `json:"plan,omitempty"`
	Groups     []string          `json:"groups,omitempty"`
	Models     []string          `json:"models,omitempty"`
	Namespaces []string          `json:"namespaces,omitempty"`
	// TTL is the key's lifetime; 0 means it does not expire.
	TTL time.Duration `json:"ttl,omitempty"`
}

// KeyCreateResponse carries the new key's description and its secret, which
// is shown only this once.
type KeyCreateResponse struct {
	Key    APIKey `json:"key"`
	Secret string `json:"secret"`
}

// KeyListRequest asks for the keys, optionally of one owner.
type KeyListRequest struct {
	Caller identity.Identity `json:"caller"`
	Owner  string            `json:"owner,omitempty"`
	// IncludeRevoked lists revoked keys too.
	IncludeRevoked bool `json:"includeRevoked,omitempty"`
}

// KeyListResponse lists keys, newest first.
type KeyListResponse struct {
	Keys []APIKey `json:"keys"`
}

// KeyRevokeRequest revokes the key with id ID.
type KeyRevokeRequest struct {
	Caller identity.Identity `json:"caller"`
	ID     string            `json:"id"`
	Reason string            `json:"reason,omitempty"`
}

// KeyRevokeResponse is the revoked key.
type KeyRevokeResponse struct {
	Key APIKey `json:"key"`
}

// JWKSResponse is the development issuer's public keys and identity, which
// the edge serves at /.well-known/.
type JWKSResponse struct {
	Issuer string `json:"issuer"`
	// JWKS is the JSON Web Key Set document.
	JWKS []byte `json:"jwks"`
}

// AuthzKeysCreate creates an API key ([KeyCreateRequest]).
func (s Subjects) AuthzKeysCreate() string { return s.Prefix() + ".authz.v1.keys.create" }

// AuthzKeysList lists API keys ([KeyListRequest]).
func (s Subjects) AuthzKeysList() string { return s.Prefix() + ".authz.v1.keys.list" }

// AuthzKeysRevoke revokes an API key ([KeyRevokeRequest]).
func (s Subjects) AuthzKeysRevoke() string { return s.Prefix() + ".authz.v1.keys.revoke" }

// AuthzJWKS returns the development issuer's key set ([JWKSResponse]).
func (s Subjects) AuthzJWKS() string { return s.Prefix() + ".authz.v1.jwks" }
