package protocol

import (
	"encoding/json"
	"unicode/utf8"
)

// KeepAlive is the encoded "ka" frame.
var KeepAlive = []byte(`{"type":"ka"}`)

// PublishedEvent names one event of a publish by its identifier (the request
// id the edge gave it) and its index in the request.
type PublishedEvent struct {
	Identifier string `json:"identifier"`
	Index      int    `json:"index"`
}

// FailedEvent is an event that could not be stored.
type FailedEvent struct {
	Identifier string `json:"identifier"`
	Index      int    `json:"index"`
	Code       int    `json:"code"`
	Message    string `json:"message"`
}

// PublishResult is the body of publish_success and of POST /event replies.
// Both lists are always present (possibly empty), as AppSync sends them.
type PublishResult struct {
	Successful []PublishedEvent `json:"successful"`
	Failed     []FailedEvent    `json:"failed"`
}

type idFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

type errorFrame struct {
	Type   string   `json:"type"`
	ID     string   `json:"id,omitempty"`
	Errors []*Error `json:"errors"`
}

type publishSuccessFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	PublishResult
}

type ackFrame struct {
	Type                string `json:"type"`
	ConnectionTimeoutMs int64  `json:"connectionTimeoutMs"`
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, ints and slices of them: encoding cannot fail.
		panic("protocol: encode: " + err.Error())
	}
	return b
}

// ConnectionAck encodes connection_ack.
func ConnectionAck(timeoutMs int64) []byte {
	return mustMarshal(ackFrame{Type: TypeConnectionAck, ConnectionTimeoutMs: timeoutMs})
}

// ConnectionError encodes connection_error.
func ConnectionError(errs ...*Error) []byte {
	return mustMarshal(errorFrame{Type: TypeConnectionError, Errors: errs})
}

// Success encodes a {type, id} acknowledgement such as subscribe_success.
func Success(typ, id string) []byte { return mustMarshal(idFrame{Type: typ, ID: id}) }

// Failure encodes a {type, id, errors} frame such as subscribe_error, or an
// "error" frame when id is empty.
func Failure(typ, id string, errs ...*Error) []byte {
	return mustMarshal(errorFrame{Type: typ, ID: id, Errors: errs})
}

// PublishSuccess encodes publish_success.
func PublishSuccess(id string, r PublishResult) []byte {
	if r.Successful == nil {
		r.Successful = []PublishedEvent{}
	}
	if r.Failed == nil {
		r.Failed = []FailedEvent{}
	}
	return mustMarshal(publishSuccessFrame{Type: TypePublishSuccess, ID: id, PublishResult: r})
}

const (
	dataPrefix = `{"type":"data","id":"`
	dataMiddle = `","event":`
)

// AppendData appends a data frame for subscription id to dst. event must
// already be a JSON string (see [AppendJSONString]); id must satisfy
// [ValidID], so it needs no escaping.
func AppendData(dst []byte, id string, event []byte) []byte {
	dst = append(dst, dataPrefix...)
	dst = append(dst, id...)
	dst = append(dst, dataMiddle...)
	dst = append(dst, event...)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, and U+2028/U+2029 are escaped so the result is also valid
// JavaScript.
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
