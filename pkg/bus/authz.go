package bus

import "github.com/gatehouse-ai/gatehouse/pkg/identity"

// Operations checked by authz.
const (
	OpSubscribe = "subscribe"
	OpPublish   = "publish"
)

// VerifyRequest asks authz to turn a credential into an Identity. Exactly
// one of Token and APIKey is set. Token may carry a "Bearer " prefix.
type VerifyRequest struct {
	Token  string `json:"token,omitempty"`
	APIKey string `json:"apiKey,omitempty"`
}

// VerifyResponse is the verified caller.
type VerifyResponse struct {
	Identity identity.Identity `json:"identity"`
}

// CheckRequest asks whether Identity may perform Op on Channel.
type CheckRequest struct {
	Identity identity.Identity `json:"identity"`
	Op       string            `json:"op"`
	Channel  string            `json:"channel"`
}

// CheckResponse is the decision. A denial is a normal reply with Allow
// false and a Reason the edge passes to the client; service errors are
// reserved for failures.
type CheckResponse struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason,omitempty"`
}
