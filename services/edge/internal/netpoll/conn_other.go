//go:build !linux

package netpoll

// SetNonBlocking returns an error: this platform has no poller, so Read stays
// blocking and callers keep one reader goroutine per connection.
func (c *Conn) SetNonBlocking() error { return errUnsupported }

// readNow is never reached: SetNonBlocking cannot succeed here.
func (c *Conn) readNow(b []byte) (int, error) { return c.tcp.Read(b) }

// read is rawRead.fn; unused here.
func (rd *rawRead) read(fd uintptr) bool { return true }
