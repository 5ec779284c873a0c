package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/channel"
)

// ErrInvalidHeader is returned by [Decode] for a missing or malformed header.
var ErrInvalidHeader = errors.New("identity: invalid identity header")

// Kind says how the caller authenticated.
type Kind string

// Kinds of credential.
const (
	KindUser    Kind = "user"    // an OIDC/JWT bearer token
	KindAPIKey  Kind = "apikey"  // an API key
	KindService Kind = "service" // a Gatehouse service
)

// Identity is a verified caller. It is a plain value, safe to copy.
type Identity struct {
	Sub       string    `json:"sub"`
	Issuer    string    `json:"iss"`
	Tenant    string    `json:"tenant,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	Plan      string    `json:"plan,omitempty"`
	ChannelID string    `json:"cid"`
	Kind      Kind      `json:"kind,omitempty"`
	KeyID     string    `json:"kid,omitempty"` // API key id when Kind is KindAPIKey
	ExpiresAt time.Time `json:"exp,omitzero"`
}

// ChannelIDFor returns the caller's own channel segment: sub itself when it
// fits the channel grammar, otherwise "u-" plus base32 of a hash of issuer
// and sub, which is stable and always grammar-clean.
func ChannelIDFor(issuer, sub string) string {
	if channel.ValidSegment(sub) && !strings.HasPrefix(sub, "u-") {
		return sub
	}
	sum := sha256.Sum256([]byte(issuer + "\x00" + sub))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
	return "u-" + strings.ToLower(enc)
}

// Expired reports whether the identity has an expiry that is before now.
func (id Identity) Expired(now time.Time) bool {
	return !id.ExpiresAt.IsZero() && now.After(id.ExpiresAt)
}

// InGroup reports whether the identity belongs to group g.
func (id Identity) InGroup(g string) bool {
	for _, x := range id.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// Subject returns the stable per-user key used by metering and caching:
// the tenant (or "-") and the channel id.
func (id Identity) Subject() string {
	t := id.Tenant
	if t == "" {
		t = "-"
	}
	return t + "/" + id.ChannelID
}

// Encode returns the header value for id: base64url (unpadded) JSON, which
// never contains characters that are illegal in a NATS header.
func Encode(id Identity) (string, error) {
	if id.Sub == "" || id.ChannelID == "" {
		return "", fmt.Errorf("identity: encode: sub and channel id are required")
	}
	b, err := json.Marshal(id)
	if err != nil {
		return "", fmt.Errorf("identity: encode: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Decode parses a header value produced by [Encode].
func Decode(v string) (Identity, error) {
	if v == "" {
		return Identity{}, fmt.Errorf("%w: empty", ErrInvalidHeader)
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidHeader, err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidHeader, err)
	}
	if id.Sub == "" || !channel.ValidSegment(id.ChannelID) {
		return Identity{}, fmt.Errorf("%w: missing sub or invalid channel id", ErrInvalidHeader)
	}
	return id, nil
}
