package bus

import (
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// ReserveRequest asks meter to reserve quota for a model call.
type ReserveRequest struct {
	RequestID       string            `json:"requestId"`
	Identity        identity.Identity `json:"identity"`
	ModelID         string            `json:"modelId"`
	InputTokens     int64             `json:"inputTokens"`
	MaxOutputTokens int64             `json:"maxOutputTokens"`
	// MaxCostMicroUSD is the most the request can cost (input estimate plus
	// maximum output, priced from the model catalog), in millionths of a USD.
	MaxCostMicroUSD int64 `json:"maxCostMicroUsd,omitempty"`
	Cached          bool  `json:"cached,omitempty"`
}

// ReserveResponse grants or refuses. A refusal is a normal reply with
// Granted false and Refusal set.
type ReserveResponse struct {
	Granted bool          `json:"granted"`
	Refusal *QuotaRefusal `json:"refusal,omitempty"`
	Windows []QuotaWindow `json:"windows"`
}

// QuotaRefusal names the limit that refused a request.
type QuotaRefusal struct {
	QuotaWindow
	RetryAfterSeconds int64 `json:"retryAfterSeconds"`
}

// SettleRequest replaces a reservation with actual usage.
type SettleRequest struct {
	RequestID string            `json:"requestId"`
	Identity  identity.Identity `json:"identity"`
	ModelID   string            `json:"modelId"`
	Usage     Usage             `json:"usage"`
	// CostMicroUSD is the actual cost, in millionths of a USD.
	CostMicroUSD int64 `json:"costMicroUsd,omitempty"`
}

// SettleResponse returns the caller's quota state after settlement.
type SettleResponse struct {
	Windows []QuotaWindow `json:"windows"`
}

// UsageRecord is one finished request, published to the USAGE stream with
// Nats-Msg-Id set to RequestID so that it is recorded once.
type UsageRecord struct {
	RequestID      string    `json:"requestId"`
	Sub            string    `json:"sub"`
	Issuer         string    `json:"iss"`
	Tenant         string    `json:"tenant,omitempty"`
	ChannelID      string    `json:"cid"`
	KeyID          string    `json:"keyId,omitempty"`
	ModelID        string    `json:"modelId"`
	Provider       string    `json:"provider"`
	ConversationID string    `json:"conversationId,omitempty"`
	InputTokens    int64     `json:"inputTokens"`
	OutputTokens   int64     `json:"outputTokens"`
	TotalTokens    int64     `json:"totalTokens"`
	Cached         bool      `json:"cached,omitempty"`
	Estimated      bool      `json:"estimated,omitempty"`
	CostMicroUSD   int64     `json:"costMicroUsd,omitempty"`
	Status         string    `json:"status"` // UsageStatus*
	StartedAt      time.Time `json:"startedAt"`
	FinishedAt     time.Time `json:"finishedAt"`
}

// Usage record statuses.
const (
	UsageStatusOK        = "ok"
	UsageStatusCancelled = "cancelled"
	UsageStatusError     = "error"
)

// UsageQuery asks meter for usage totals of one subject (or, for admins,
// any) over a time range.
type UsageQuery struct {
	Identity identity.Identity `json:"identity"`
	Sub      string            `json:"sub,omitempty"`
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	GroupBy  string            `json:"groupBy,omitempty"` // "", "model", "hour", "day", "user", "key"
}

// UsageRow is one group of a [UsageQuery] answer.
type UsageRow struct {
	Group        string `json:"group,omitempty"`
	Requests     int64  `json:"requests"`
	InputTokens  int64  `json:"inputTokens"`
	OutputTokens int64  `json:"outputTokens"`
	TotalTokens  int64  `json:"totalTokens"`
	// CachedRequests is how many of Requests were answered from the cache.
	CachedRequests int64 `json:"cachedRequests"`
	// CostMicroUSD is the spend priced from the model catalog, in
	// millionths of a US dollar.
	CostMicroUSD int64 `json:"costMicroUsd"`
}

// UsageResponse answers a [UsageQuery].
type UsageResponse struct {
	Rows []UsageRow `json:"rows"`
}
