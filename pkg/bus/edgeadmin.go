package bus

// EdgeDisconnect is where an operator (or a whole-system test) asks every
// edge to close the sockets of one caller, for example to force clients to
// reconnect. It is core NATS: every edge acts on it, and each one answers a
// request (when the message has a reply subject) with a
// [DisconnectResponse]. Only Gatehouse services hold NATS credentials, so
// clients cannot send it.
func (s Subjects) EdgeDisconnect() string { return s.Prefix() + ".edge.v1.disconnect" }

// DisconnectRequest selects the sockets [Subjects.EdgeDisconnect] closes:
// those authenticated with API key KeyID, or as Sub (of Issuer, when Issuer
// is set). Exactly one of KeyID and Sub is set. Reason is sent in the
// WebSocket close frame (cut to 123 bytes).
type DisconnectRequest struct {
	KeyID  string `json:"keyId,omitempty"`
	Sub    string `json:"sub,omitempty"`
	Issuer string `json:"iss,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// DisconnectResponse is one edge's answer to a [DisconnectRequest].
type DisconnectResponse struct {
	Edge   string `json:"edge"`
	Closed int    `json:"closed"`
}
