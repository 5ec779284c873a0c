//go:build !linux

package netpoll

// Supported reports whether this platform has the poller. It is false here:
// [New] returns an error and callers keep one blocking reader goroutine per
// connection.
func Supported() bool { return false }

// Poller is unavailable on this platform; see [Supported].
type Poller struct{}

// Registration is unavailable on this platform; see [Supported].
type Registration struct{}

// New returns an error on this platform; see [Supported].
func New() (*Poller, error) { return nil, errUnsupported }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Register returns an error on this platform.
func (p *Poller) Register(c *Conn, onReady func()) (*Registration, error) {
	return nil, errUnsupported
}

// Arm returns an error on this platform.
func (r *Registration) Arm() error { return errUnsupported }

// Deregister does nothing.
func (r *Registration) Deregister() {}
