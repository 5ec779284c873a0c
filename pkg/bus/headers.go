package bus

import (
	"crypto/rand"
	"encoding/base32"
	"strings"

	"github.com/nats-io/nats.go"
)

// Header names. nats.Header is case-sensitive: use these constants, and keep
// the W3C trace headers lowercase.
const (
	HeaderRequestID   = "Gh-Request-Id"
	HeaderIdentity    = "Gh-Identity"
	HeaderReplyTo     = "Gh-Reply-To"
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = nats.MsgIdHdr
)

// HeaderCarrier adapts nats.Header to OpenTelemetry's TextMapCarrier without
// canonicalising names, so "traceparent" stays lowercase on the wire.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values with value.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a random 128-bit id of 26 lowercase base32 characters, safe
// as a subject token, a channel segment and an AppSync id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
