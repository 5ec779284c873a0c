package edge

import (
	"crypto/tls"
	"errors"

	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/wsframe"
)

// Reading: an idle socket has no reader goroutine and no read buffer. On
// Linux every socket's connection is registered with the Service's
// netpoll.Poller (one epoll set, one waiting goroutine); when bytes arrive
// the poller starts a short-lived goroutine (readReady) that reads and
// handles every complete message until the connection would block (the
// TCP connection under TLS is non-blocking after the upgrade, and crypto/tls
// resumes after its temporary error), then re-arms the registration and
// exits. The wsframe.Reader keeps a buffer only while a frame is partly
// read. Where no poller exists (other systems, or a connection that is not
// a netpoll.Conn) a socket keeps one blocking reader goroutine instead, with
// the same code.
//
// The reader stops for good when the peer closes, the connection fails or a
// protocol error is found; the socket's writer closes the connection
// (finish). A socket is done when both have happened (conn.end), and
// whichever is last drops its subscriptions and unregisters it.

// Reader states (conn.readState).
const (
	readArmed   int32 = iota // waiting for the poller; no goroutine
	readRunning              // a reader goroutine owns the reader state
	readStopped              // no more reading
)

// startReading begins reading the socket: through the poller when the
// connection allows it, otherwise on a reader goroutine of its own.
func (c *conn) startReading() {
	if pc := pollable(c.nc); pc != nil && c.s.poller != nil && pc.SetNonBlocking() == nil {
		c.startPolled(pc)
		return
	}
	c.readState.Store(readRunning)
	c.s.readers.Add(1)
	go func() {
		defer c.s.readers.Done()
		c.readAll()
		c.readState.Store(readStopped)
		c.readerStopped()
	}()
}

// startPolled registers the socket with the poller and reads what is
// already there.
func (c *conn) startPolled(pc *netpoll.Conn) {
	c.readState.Store(readArmed)
	// regMu is held until reg is set: a readReady that starts at once
	// waits for it (registration).
	c.regMu.Lock()
	reg, err := c.s.poller.Register(pc, c.readReady)
	c.reg = reg
	c.regMu.Unlock()
	if err != nil {
		c.logger().Warn("socket not registered with the poller; closing it", "err", err)
		c.readState.Store(readStopped)
		c.fail(wsframe.CloseInternalError, "", nil)
		c.readerStopped()
		return
	}
	// Read once now: the client may have sent frames with its upgrade
	// request, which net/http (or crypto/tls) already took off the socket,
	// so no readiness event would come for them.
	c.readReady()
}

// registration returns the socket's poller registration (nil without one).
func (c *conn) registration() *netpoll.Registration {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	return c.reg
}

// pollable returns the netpoll.Conn under nc (a TLS connection or not), or
// nil.
func pollable(nc any) *netpoll.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	pc, _ := nc.(*netpoll.Conn)
	return pc
}

// readReady runs on the poller's goroutine for a readable socket.
func (c *conn) readReady() {
	if !c.readState.CompareAndSwap(readArmed, readRunning) {
		return
	}
	if !c.readAll() {
		c.readState.Store(readStopped)
		c.deregister()
		c.readerStopped()
		return
	}
	// Would block: wait for the poller again. Armed is set before the
	// registration is, so an event right after Arm finds it.
	c.readState.Store(readArmed)
	if err := c.registration().Arm(); err != nil {
		// The connection is closed (finish): stop, unless finish already
		// claimed the stop.
		c.stopIfArmed()
	}
}

// stopIfArmed stops a reader that is waiting for the poller; it is how
// the writer ends the reading of a socket it has closed. A reader that is
// running stops by itself on the closed connection.
func (c *conn) stopIfArmed() {
	if c.readState.CompareAndSwap(readArmed, readStopped) {
		c.deregister()
		c.readerStopped()
	}
}

func (c *conn) deregister() {
	if reg := c.registration(); reg != nil {
		reg.Deregister()
	}
}

// readAll reads and handles messages until the connection would block
// (true) or the socket is done reading (false).
func (c *conn) readAll() bool {
	if c.discarding {
		return c.discard()
	}
	if c.frames == nil {
		c.frames = wsframe.NewReader(c.s.cfg.ReadLimit)
	}
	for {
		m, err := c.frames.Next(c.nc)
		if err != nil {
			if errors.Is(err, netpoll.ErrWouldBlock) {
				if !c.frames.Pending() {
					c.frames = nil // an idle socket keeps no frame reader
				}
				return true
			}
			var pe *wsframe.ProtocolError
			if errors.As(err, &pe) {
				// The byte stream can no longer be parsed. Send the close
				// frame, and read (and drop) what the client still sends
				// until it closes: closing with unread bytes would reset
				// the connection, and the client would lose the close
				// frame that says what was wrong.
				c.fail(pe.Code, pe.Reason, nil)
				c.discarding = true
				return c.discard()
			}
			c.fail(wsframe.CloseNormal, "", nil)
			return false
		}
		switch m.Op {
		case wsframe.OpText:
			if !c.failed.Load() && c.handle(m.Payload) && c.initTimer != nil {
				c.initTimer.Stop()
				c.initTimer = nil
			}
		case wsframe.OpBinary:
			if !c.failed.Load() {
				c.send(protocol.Failure(protocol.TypeError, "", protocol.BadRequest("binary messages are not supported; send JSON text")))
			}
		case wsframe.OpPing:
			c.enqueue(outFrame{kind: outPong, b: append([]byte(nil), m.Payload...)})
		case wsframe.OpClose:
			if _, _, err := wsframe.ParseClose(m.Payload); err != nil {
				var pe *wsframe.ProtocolError
				if errors.As(err, &pe) {
					c.fail(pe.Code, pe.Reason, nil)
					return false
				}
			}
			c.fail(wsframe.CloseNormal, "", nil)
			return false
		}
	}
}

// discard reads and drops bytes until the connection would block (true)
// or ends (false).
func (c *conn) discard() bool {
	var scratch [512]byte
	for {
		if _, err := c.nc.Read(scratch[:]); err != nil {
			return errors.Is(err, netpoll.ErrWouldBlock)
		}
	}
}

// readerStopped records that the reader stopped for good.
func (c *conn) readerStopped() {
	close(c.readDone)
	c.end()
}

// end is called once by the reader (readerStopped) and once by the writer
// (finish); the second call drops the socket.
func (c *conn) end() {
	if c.ends.Add(1) == 2 {
		c.cleanup()
		c.s.unregister(c)
	}
}
