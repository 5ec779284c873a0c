package netpoll

import (
	"errors"
	"net"
)

// ErrWouldBlock is returned by (*Conn).Read in non-blocking mode when no byte
// is available now. Wait for the connection's onReady (after
// [Registration.Arm]) and read again.
//
// It is a net.Error whose Timeout and Temporary methods report true, and Read
// returns it unwrapped. That matters for crypto/tls: readRecordOrCCS in
// crypto/tls/conn.go (Go 1.26) records a read error as permanent only when
//
//	if e, ok := err.(net.Error); !ok || !e.Temporary() {
//		c.in.setErrorLocked(err)
//	}
//
// so a temporary error leaves the partly read record in the tls.Conn's raw
// input buffer and a later Read resumes it instead of failing for good. The
// check is a type assertion, not errors.As, which is why the error must not be
// wrapped.
var ErrWouldBlock error = wouldBlockError{}

// wouldBlockError is the type of [ErrWouldBlock].
type wouldBlockError struct{}

var _ net.Error = wouldBlockError{}

func (wouldBlockError) Error() string {
	return "netpoll: read would block: no data yet, wait for onReady and read again"
}

// Timeout reports true: no data arrived in the (zero) time allowed.
func (wouldBlockError) Timeout() bool { return true }

// Temporary reports true so that crypto/tls keeps its state; see [ErrWouldBlock].
func (wouldBlockError) Temporary() bool { return true }

var (
	// errPollerClosed is returned by Register and Arm after Close.
	errPollerClosed = errors.New("netpoll: poller is closed; create a new one with netpoll.New")
	// errDeregistered is returned by Arm after Deregister.
	errDeregistered = errors.New("netpoll: registration was removed; call Poller.Register again")
	// errUnsupported is returned where the platform has no poller.
	errUnsupported = errors.New("netpoll: no readiness poller on this platform; check netpoll.Supported and keep one blocking reader goroutine per connection")
)
