package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Client message types.
const (
	TypeConnectionInit = "connection_init"
	TypeSubscribe      = "subscribe"
	TypeUnsubscribe    = "unsubscribe"
	TypePublish        = "publish"
)

// Server message types.
const (
	TypeConnectionAck      = "connection_ack"
	TypeConnectionError    = "connection_error"
	TypeKeepAlive          = "ka"
	TypeSubscribeSuccess   = "subscribe_success"
	TypeSubscribeError     = "subscribe_error"
	TypeUnsubscribeSuccess = "unsubscribe_success"
	TypeUnsubscribeError   = "unsubscribe_error"
	TypePublishSuccess     = "publish_success"
	TypePublishError       = "publish_error"
	TypeData               = "data"
	TypeBroadcastError     = "broadcast_error"
	TypeError              = "error"
)

// MaxIDLen is the longest subscription or publish id (AppSync's limit).
const MaxIDLen = 128

// maxAuthorizationEntries bounds the authorization object of one frame.
const maxAuthorizationEntries = 32

// Sentinel errors of [ParseFrame].
var (
	ErrMalformed   = errors.New("protocol: malformed frame")
	ErrMissingType = errors.New("protocol: frame has no type")
)

// Frame is one message a client sent. Fields that a type does not use are
// zero. Unknown fields (the Amplify client also sends "payload") are ignored.
type Frame struct {
	Type    string
	ID      string
	Channel string
	// Events holds the raw JSON of each element of "events"; HasEvents
	// reports whether the field was present at all.
	Events    []json.RawMessage
	HasEvents bool
	// Authorization holds the string members of the frame's
	// "authorization" object (for example "Authorization", "x-api-key",
	// "host"); other members are dropped.
	Authorization map[string]string
}

type rawFrame struct {
	Type          *string          `json:"type"`
	ID            json.RawMessage  `json:"id"`
	Channel       json.RawMessage  `json:"channel"`
	Events        *json.RawMessage `json:"events"`
	Authorization json.RawMessage  `json:"authorization"`
}

// ParseFrame decodes one client text message. It checks the JSON shape only
// (every present field has the right JSON type); what a type requires is
// the caller's to check. Errors wrap [ErrMalformed] or [ErrMissingType] and
// say which field is wrong.
func ParseFrame(data []byte) (Frame, error) {
	var raw rawFrame
	if err := json.Unmarshal(data, &raw); err != nil {
		return Frame{}, fmt.Errorf("%w: not a JSON object: %v", ErrMalformed, trimErr(err))
	}
	if raw.Type == nil || *raw.Type == "" {
		return Frame{}, ErrMissingType
	}
	f := Frame{Type: *raw.Type}
	var err error
	if f.ID, err = optString(raw.ID, "id"); err != nil {
		return Frame{}, err
	}
	if f.Channel, err = optString(raw.Channel, "channel"); err != nil {
		return Frame{}, err
	}
	if raw.Events != nil && !isNull(*raw.Events) {
		if err := json.Unmarshal(*raw.Events, &f.Events); err != nil {
			return Frame{}, fmt.Errorf("%w: \"events\" must be an array", ErrMalformed)
		}
		f.HasEvents = true
	}
	if len(raw.Authorization) > 0 && !isNull(raw.Authorization) {
		var m map[string]any
		if err := json.Unmarshal(raw.Authorization, &m); err != nil {
			return Frame{}, fmt.Errorf("%w: \"authorization\" must be an object", ErrMalformed)
		}
		if len(m) > maxAuthorizationEntries {
			return Frame{}, fmt.Errorf("%w: \"authorization\" has more than %d members", ErrMalformed, maxAuthorizationEntries)
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				if f.Authorization == nil {
					f.Authorization = make(map[string]string, len(m))
				}
				f.Authorization[k] = s
			}
		}
	}
	return f, nil
}

func optString(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %q must be a string", ErrMalformed, name)
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// trimErr keeps decoder messages short; they may quote client input.
func trimErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// ValidID reports whether id matches ^[a-zA-Z0-9-_+]{1,128}$, the AppSync
// rule for subscription and publish ids.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '+') {
			return false
		}
	}
	return true
}

// Lookup returns the value of header name in an authorization object,
// matching the name case-insensitively as HTTP does.
func Lookup(auth map[string]string, name string) string {
	if v, ok := auth[name]; ok {
		return v
	}
	for k, v := range auth {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
