package bus

import "time"

// Revocation is broadcast by authz on [Subjects.AuthzRevoked] when an API
// key or a user's sessions are revoked. Every edge drops cached identities
// that match and closes the sockets that authenticated with them. Exactly
// one of KeyID and Sub is set; Issuer qualifies Sub.
type Revocation struct {
	KeyID     string    `json:"keyId,omitempty"`
	Sub       string    `json:"sub,omitempty"`
	Issuer    string    `json:"iss,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	RevokedAt time.Time `json:"revokedAt"`
}
