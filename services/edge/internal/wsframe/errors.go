package wsframe

import (
	"errors"
	"strconv"
)

// ProtocolError is a violation of RFC 6455 by the peer. The server should
// close the connection with Code and Reason; Reason is at most 123 bytes and
// says what was wrong. A ProtocolError returned by [Reader.Next] is final.
type ProtocolError struct {
	Code   uint16
	Reason string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return "wsframe: protocol error " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// errInvalidRead is returned when a source reports an impossible byte count.
var errInvalidRead = errors.New("wsframe: source returned an invalid count from Read")

func protoErr(code uint16, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}
