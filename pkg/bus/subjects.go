package bus

import (
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "gh"

// Well-known channel namespaces of the chat protocol.
const (
	NamespaceInbound  = "Inbound-Messages"
	NamespaceOutbound = "Outbound-Messages"
)

// Durable consumer names.
const (
	ConsumerChat   = "chat"   // INBOUND, shared by all chat replicas
	ConsumerLedger = "ledger" // USAGE, shared by all meter replicas
)

// Queue groups used by request/reply services.
const (
	QueueAuthz = "authz"
	QueueMeter = "meter"
	QueueCache = "cache"
)

// Subjects builds every subject under one prefix. The zero value uses
// [DefaultPrefix]. It is a value type, safe for concurrent use.
type Subjects struct {
	prefix string
}

// NewSubjects returns the subjects under prefix ("" means [DefaultPrefix]).
// The prefix must be one or more NATS tokens of [A-Za-z0-9_-].
func NewSubjects(prefix string) Subjects { return Subjects{prefix: prefix} }

// ValidPrefix reports whether p is usable as a subject prefix.
func ValidPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return false
		}
		for _, c := range tok {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Prefix returns the prefix in use.
func (s Subjects) Prefix() string {
	if s.prefix == "" {
		return DefaultPrefix
	}
	return s.prefix
}

// Channel returns the subject of a parsed channel (see [channel.Channel.Subject]).
func (s Subjects) Channel(c channel.Channel) string { return c.Subject(s.Prefix()) }

// Inbound returns the subject of /Inbound-Messages/<channelID>. channelID
// must be a valid segment (an [identity.Identity.ChannelID] always is).
func (s Subjects) Inbound(channelID string) string {
	return s.Prefix() + ".ch." + NamespaceInbound + "." + channelID
}

// Outbound returns the subject of /Outbound-Messages/<channelID>.
func (s Subjects) Outbound(channelID string) string {
	return s.Prefix() + ".ch." + NamespaceOutbound + "." + channelID
}

// InboundAll is the filter of the chat requests in the INBOUND stream
// (and of the chat workers' consumer).
func (s Subjects) InboundAll() string { return s.Prefix() + ".ch." + NamespaceInbound + ".>" }

// InboundKeep is where chat stores INBOUND's keep markers (see
// [InboundKeepInterval]); no client channel maps to it and no consumer
// reads it.
func (s Subjects) InboundKeep() string { return s.Prefix() + ".inbound.keep" }

// Reply is where chat streams the answer to one HTTP API request.
func (s Subjects) Reply(edgeID, requestID string) string {
	return s.Prefix() + ".reply." + edgeID + "." + requestID
}

// AuthzVerify is the credential -> Identity endpoint.
func (s Subjects) AuthzVerify() string { return s.Prefix() + ".authz.v1.verify" }

// AuthzCheck is the (Identity, op, channel) -> decision endpoint.
func (s Subjects) AuthzCheck() string { return s.Prefix() + ".authz.v1.check" }

// AuthzRevoked carries revocation broadcasts to every edge.
func (s Subjects) AuthzRevoked() string { return s.Prefix() + ".authz.v1.revoked" }

// MeterReserve reserves quota before a model call.
func (s Subjects) MeterReserve() string { return s.Prefix() + ".meter.v1.reserve" }

// MeterSettle replaces a reservation with actual usage.
func (s Subjects) MeterSettle() string { return s.Prefix() + ".meter.v1.settle" }

// MeterUsage answers usage queries.
func (s Subjects) MeterUsage() string { return s.Prefix() + ".meter.v1.usage" }

// Usage is the USAGE stream subject for one tenant; tenants that are not a
// clean token are mapped to a derived one, and "" to "default".
func (s Subjects) Usage(tenant string) string {
	return s.Prefix() + ".usage.v1." + TenantToken(tenant)
}

// UsageAll is the filter of the USAGE stream.
func (s Subjects) UsageAll() string { return s.Prefix() + ".usage.v1.>" }

// CacheGet looks up a cached answer.
func (s Subjects) CacheGet() string { return s.Prefix() + ".cache.v1.get" }

// CachePut stores an answer.
func (s Subjects) CachePut() string { return s.Prefix() + ".cache.v1.put" }

// Cancel tells chat to stop the upstream call for a request.
func (s Subjects) Cancel(requestID string) string { return s.Prefix() + ".chat.v1.cancel." + requestID }

// CancelAll is the wildcard chat subscribes to for cancellations.
func (s Subjects) CancelAll() string { return s.Prefix() + ".chat.v1.cancel.*" }

// StreamInbound is the name of the chat request work queue stream.
func (s Subjects) StreamInbound() string { return s.streamName("INBOUND") }

// StreamUsage is the name of the usage record stream.
func (s Subjects) StreamUsage() string { return s.streamName("USAGE") }

// CacheBucket is the name of the JetStream KV bucket of the response cache.
func (s Subjects) CacheBucket() string { return s.streamName("CACHE") }

func (s Subjects) streamName(base string) string {
	if s.Prefix() == DefaultPrefix {
		return base
	}
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s.Prefix())) + "_" + base
}

// TenantToken maps a tenant name to a single safe subject token.
func TenantToken(tenant string) string {
	if tenant == "" {
		return "default"
	}
	if channel.ValidSegment(tenant) {
		return tenant
	}
	return identity.ChannelIDFor("tenant", tenant)
}

// ValidToken reports whether s is safe as one subject token built from an id
// that Gatehouse generated or received (request ids, edge ids).
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
