// Package netpoll lets the edge hold many idle connections without a
// goroutine per connection.
//
// A [Conn] wraps an accepted *net.TCPConn (use [Listener]). It behaves like
// the TCPConn, so net/http and crypto/tls work over it unchanged, until
// [Conn.SetNonBlocking] is called; from then on Read never waits and returns
// [ErrWouldBlock] when no byte is available.
//
// A [Poller] watches many such connections with one goroutine blocked in
// epoll_wait and calls a connection's onReady callback, on a new goroutine,
// when it becomes readable or its peer goes away. Registrations are one-shot:
// after onReady the registration stays disarmed until [Registration.Arm]. The
// usual cycle is
//
//	onReady: read until ErrWouldBlock (or an error), handle the bytes, Arm
//
// so a connection costs no goroutine while it is idle.
//
// The poller exists on Linux only ([Supported]); elsewhere [New] returns an
// error and callers keep one blocking reader goroutine per connection.
package netpoll
