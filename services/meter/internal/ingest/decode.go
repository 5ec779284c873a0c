package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// ErrPoison marks a usage message that can never be stored. Such messages
// are terminated instead of redelivered.
var ErrPoison = errors.New("ingest: poison usage message")

// MaxRequestIDLen bounds a usage record's request id.
const MaxRequestIDLen = 256

// Decode parses one USAGE message into a record ready for the ledger.
// It fails with [ErrPoison] when data is not a JSON usage record, the
// request id is missing or longer than [MaxRequestIDLen], a token count is
// negative, or a text field holds a NUL byte (which Postgres cannot store).
// A missing FinishedAt becomes published (the stream's timestamp) and a
// missing StartedAt becomes FinishedAt; times are converted to UTC.
func Decode(data []byte, published time.Time) (bus.UsageRecord, error) {
	return decode(data, func() time.Time { return published })
}

// decode is [Decode] with the publish time asked for only when the record
// has no FinishedAt (reading it from a message's metadata costs a parse).
func decode(data []byte, published func() time.Time) (bus.UsageRecord, error) {
	var r bus.UsageRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrPoison, err)
	}
	switch {
	case r.RequestID == "":
		return r, fmt.Errorf("%w: requestId is missing", ErrPoison)
	case len(r.RequestID) > MaxRequestIDLen:
		return r, fmt.Errorf("%w: requestId is longer than %d bytes", ErrPoison, MaxRequestIDLen)
	case r.InputTokens < 0:
		return r, fmt.Errorf("%w: inputTokens is negative", ErrPoison)
	case r.OutputTokens < 0:
		return r, fmt.Errorf("%w: outputTokens is negative", ErrPoison)
	case r.TotalTokens < 0:
		return r, fmt.Errorf("%w: totalTokens is negative", ErrPoison)
	}
	for _, f := range []string{r.RequestID, r.Sub, r.Issuer, r.Tenant, r.ChannelID, r.KeyID, r.ModelID,
		r.Provider, r.ConversationID, r.Status} {
		if strings.IndexByte(f, 0) >= 0 {
			return r, fmt.Errorf("%w: a text field contains a NUL byte", ErrPoison)
		}
	}
	if r.FinishedAt.IsZero() {
		r.FinishedAt = published()
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = r.FinishedAt
	}
	r.StartedAt, r.FinishedAt = r.StartedAt.UTC(), r.FinishedAt.UTC()
	return r, nil
}
