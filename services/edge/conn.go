package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/hub"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/netpoll"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/wsframe"
)

// maxExtraCredentials bounds the per-frame credentials (different from the
// connection's) a socket remembers as verified.
const maxExtraCredentials = 4

// Close reasons (sent in the WebSocket close frame, at most 123 bytes).
const (
	reasonSlowConsumer = "slow consumer: send queue full"
	reasonInitTimeout  = "connection_init not received in time"
	reasonExpired      = "token expired"
	reasonUnauthorized = "unauthorized"
	reasonLimit        = "connection limit reached"
	reasonShutdown     = "server shutting down"
)

type outKind uint8

const (
	outRaw  outKind = iota // b is a complete frame
	outData                // data frame for subscription id, b is the JSON string event
	outAck                 // b is connection_ack; keep-alives start after it
	outKA                  // b is the "ka" frame; the next one is timed from it
	outPong                // b is the payload of a pong answering the client's ping
)

type outFrame struct {
	kind outKind
	id   string
	b    []byte
}

type subscription struct {
	ch       channel.Channel
	subjects []string
}

// conn is one WebSocket. Its reader (readers.go: a short-lived goroutine
// per readable burst, or one goroutine where there is no poller) owns every
// field below "reader state"; Deliver and fail may be called from any
// goroutine. Writes are made by the socket's short-lived writer
// (writers.go): whoever sets scheduled (false to true) starts it, and it
// owns the socket's writes (and ka) until it clears scheduled. Once the
// socket has failed, its last writer closes it (finish) and scheduled stays
// set. The socket is dropped (cleanup, unregister) when both the reader has
// stopped and the writer has closed it (end).
type conn struct {
	s  *Service
	nc net.Conn // the upgraded connection (TLS or not)

	queue     *sendQueue
	scheduled atomic.Bool // the socket's writer is running
	ka        *time.Timer // keep-alive timer; owned by the scheduled writer
	failed    atomic.Bool
	failOnce  sync.Once
	// Set once by fail before failed is set.
	closeCode   uint16
	closeReason string
	finalFrame  []byte

	readState atomic.Int32  // readArmed, readRunning or readStopped
	readDone  chan struct{} // closed when the reader stops for good
	regMu     sync.Mutex
	reg       *netpoll.Registration // nil without a poller
	ends      atomic.Int32          // reader and writer ends seen (end)
	initTimer *time.Timer           // fails the socket without connection_init; reader state, nil once initialised
	expTimer  *time.Timer           // fails the socket at token expiry; nil without one

	// Set before the socket is registered, read-only afterwards.
	ident   identity.Identity
	authErr *protocol.Error // connect-time verification failure
	// identKey is the identityKey the socket is counted under ("" when not
	// counted); guarded by Service.mu.
	identKey string

	// reader state
	frames      *wsframe.Reader
	discarding  bool // after a protocol error: client bytes are dropped until it closes
	cred        credential
	limitErr    *protocol.Error // refused at connection_init by a connection limit
	initialised bool
	bucket      tokenBucket
	cacheEpoch  uint64 // Service.revocations when extra and decisions were last valid
	subs        map[string]*subscription
	decisions   map[string]*protocol.Error // nil value = allowed
	extra       map[credential]identity.Identity
	recent      []recentRequest // ring of the last RecentRequests stored requests
	recentNext  int
}

type recentRequest struct {
	id        string
	channelID string // the publisher's channel id; its answers go to /Outbound-Messages/<channelID>
}

func (s *Service) newConn(nc net.Conn, pending []byte, ident identity.Identity, cred credential, authErr *protocol.Error) *conn {
	var frames *wsframe.Reader // made when bytes arrive (readers.go)
	if len(pending) > 0 {
		frames = wsframe.NewReader(s.cfg.ReadLimit)
		frames.Prime(pending)
	}
	c := &conn{
		s:          s,
		nc:         nc,
		queue:      newSendQueue(s.cfg.SendQueueLen),
		readDone:   make(chan struct{}),
		frames:     frames,
		ident:      ident,
		cred:       cred,
		authErr:    authErr,
		subs:       make(map[string]*subscription),
		decisions:  make(map[string]*protocol.Error),
		bucket:     newTokenBucket(s.cfg.PublishRate, s.cfg.PublishBurst, time.Now()),
		cacheEpoch: s.revocations.Load(),
	}
	// The upgrading handler owns the reader state until start.
	c.readState.Store(readRunning)
	return c
}

// logger returns the service's logger scoped to the socket's caller. It is
// built on use (logging a socket is rare) rather than kept per socket.
func (c *conn) logger() *slog.Logger { return c.s.log.With("sub", c.ident.Sub) }

// Reject implements hub.Sink: an event for subscription id was too big to
// deliver, so the client gets a broadcast_error instead.
func (c *conn) Reject(id string, size int) {
	c.send(protocol.Failure(protocol.TypeBroadcastError, id, protocol.LimitExceeded(
		fmt.Sprintf("an event of %d bytes was not delivered: at most %d bytes per event", size, c.s.cfg.MaxDeliverBytes))))
}

// Deliver implements hub.Sink. It never blocks: a full queue disconnects
// the socket as a slow consumer. The frame waits in the queue until Flush
// (or any other frame) wakes the writers, so a burst is written as one
// batch.
func (c *conn) Deliver(id string, event []byte) {
	if c.failed.Load() {
		return
	}
	if !c.queue.push(outFrame{kind: outData, id: id, b: event}) {
		c.fail(wsframe.ClosePolicyViolation, reasonSlowConsumer, nil)
	}
}

// Flush implements hub.Sink.
func (c *conn) Flush() {
	if !c.scheduled.Load() && !c.queue.empty() {
		c.wake()
	}
}

var _ hub.Sink = (*conn)(nil)

func (c *conn) enqueue(f outFrame) {
	if c.failed.Load() {
		return
	}
	if !c.queue.push(f) {
		c.fail(wsframe.ClosePolicyViolation, reasonSlowConsumer, nil)
		return
	}
	c.wake()
}

// keepAlive runs on the keep-alive timer.
func (c *conn) keepAlive() { c.enqueue(outFrame{kind: outKA, b: protocol.KeepAlive}) }

func (c *conn) send(b []byte) { c.enqueue(outFrame{kind: outRaw, b: b}) }

// fail ends the socket: frames still queued are dropped, final (if any) is
// written, then the socket is closed with code and reason (by finish, on
// the socket's writer). Only the first call counts.
func (c *conn) fail(code uint16, reason string, final []byte) {
	c.failOnce.Do(func() {
		c.closeCode, c.closeReason, c.finalFrame = code, reason, final
		c.failed.Store(true)
		c.wake()
	})
}

// start arms the socket's timers and starts reading it. Call it once,
// after the socket is registered.
func (c *conn) start() {
	c.initTimer = time.AfterFunc(c.s.cfg.InitTimeout, func() {
		c.fail(wsframe.ClosePolicyViolation, reasonInitTimeout, nil)
	})
	if !c.ident.ExpiresAt.IsZero() {
		c.expTimer = time.AfterFunc(time.Until(c.ident.ExpiresAt), func() {
			c.fail(wsframe.ClosePolicyViolation, reasonExpired,
				protocol.ConnectionError(&protocol.Error{ErrorType: protocol.ErrTypeUnauthorized, Message: reasonExpired, ErrorCode: 401}))
		})
	}
	c.startReading()
}

// cleanup drops the socket's subscriptions and cancels its requests. It
// runs once, after the reader stopped and the socket was closed (end).
func (c *conn) cleanup() {
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	for id, sub := range c.subs {
		c.s.hub.Remove(sub.subjects, hub.Member{Sink: c, ID: id})
	}
	c.s.metrics.subsActive.Sub(float64(len(c.subs)))
	c.subs = nil
	var ids []string
	for _, r := range c.recent {
		if r.id != "" {
			ids = append(ids, r.id)
		}
	}
	c.s.cancelRequests(c.ident, ids)
	c.recent = nil
}

// flush runs on the socket's writer (see writeBursts): it encodes
// everything queued into one buffer and writes it with one write (one
// syscall, and one run of TLS records) under WriteTimeout.
func (c *conn) flush(w *writerState) {
	w.batch = c.queue.take(w.batch)
	out := w.out[:0]
	data := 0
	for _, f := range w.batch {
		switch f.kind {
		case outData:
			data++
			w.buf = protocol.AppendData(w.buf[:0], f.id, f.b)
			out = wsframe.AppendFrame(out, wsframe.OpText, w.buf)
		case outPong:
			out = wsframe.AppendFrame(out, wsframe.OpPong, f.b)
		default:
			out = wsframe.AppendFrame(out, wsframe.OpText, f.b)
		}
		switch {
		case f.kind == outAck && c.ka == nil:
			c.ka = time.AfterFunc(c.s.cfg.KeepAliveInterval, c.keepAlive)
		case f.kind == outKA:
			c.ka.Reset(c.s.cfg.KeepAliveInterval)
		}
	}
	if data > 0 {
		// Counted before the write, so a client that has read the frames
		// sees them counted.
		c.s.metrics.delivered.Add(float64(data))
	}
	if err := c.write(out); err != nil {
		c.logger().Debug("websocket write failed", "err", err)
		c.fail(wsframe.CloseAbnormal, "", nil)
	}
	clear(w.batch)
	w.batch = w.batch[:0]
	w.out = keepSmall(out, maxKeptBatch)
	w.buf = keepSmall(w.buf, maxKeptWriteBuf)
}

// write writes b to the connection within WriteTimeout.
func (c *conn) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	_, err := c.nc.Write(b)
	_ = c.nc.SetWriteDeadline(time.Time{})
	return err
}

// keepSmall returns b emptied, or nil when its capacity is above max.
func keepSmall(b []byte, max int) []byte {
	if cap(b) > max {
		return nil
	}
	return b[:0]
}

// Largest buffers a writer keeps for the next socket it writes (writer
// states are pooled, never per socket): the encoded batch and the
// encoding of one data frame.
const (
	maxKeptBatch    = 64 << 10
	maxKeptWriteBuf = 4 << 10
)

// protocolViolation reports whether code is one the reader closes with
// after a framing error (readers.go), when it only discards input.
func protocolViolation(code uint16) bool {
	return code == wsframe.CloseProtocolError || code == wsframe.CloseInvalidPayload || code == wsframe.CloseMessageTooBig
}

// closeWait bounds how long a closing socket waits for the client's close
// frame (the closing handshake, RFC 6455 section 7.1.1) before it drops
// the connection.
const closeWait = 2 * time.Second

// finish closes a failed socket. It runs on the socket's writer (the
// closing handshake may wait for the peer, which blocks nobody else).
func (c *conn) finish(w *writerState) {
	if c.ka != nil {
		c.ka.Stop()
	}
	if c.closeCode != wsframe.CloseAbnormal {
		if c.closeReason != "" {
			c.logger().Info("closing socket", "code", int(c.closeCode), "reason", c.closeReason)
		}
		out := w.out[:0]
		if c.finalFrame != nil {
			out = wsframe.AppendFrame(out, wsframe.OpText, c.finalFrame)
		}
		out = wsframe.AppendClose(out, c.closeCode, c.closeReason)
		if err := c.write(out); err == nil {
			if protocolViolation(c.closeCode) {
				// The reader no longer parses what the client sends, so
				// it would not see the client's close frame: end our side
				// of the stream (TLS close_notify, or TCP FIN) so the
				// client closes and the reader gets EOF.
				if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
			}
			t := time.NewTimer(closeWait)
			select {
			case <-c.readDone:
			case <-t.C:
			}
			t.Stop()
		}
		w.out = keepSmall(out, maxKeptBatch)
	}
	_ = c.nc.Close()
	c.stopIfArmed()
	c.end()
}

// handle processes one client frame. It reports whether the connection is
// now initialised.
func (c *conn) handle(data []byte) bool {
	f, err := protocol.ParseFrame(data)
	if err != nil {
		c.send(protocol.Failure(protocol.TypeError, "", protocol.BadRequest(err.Error())))
		return c.initialised
	}
	if !c.initialised {
		if f.Type != protocol.TypeConnectionInit {
			c.send(protocol.Failure(protocol.TypeError, idIfValid(f.ID), protocol.BadRequest("send connection_init first")))
			return false
		}
		if refuse := c.authErr; refuse != nil || c.limitErr != nil {
			reason := reasonUnauthorized
			if refuse == nil {
				refuse, reason = c.limitErr, reasonLimit
			}
			e := *refuse
			if e.ErrorCode == 0 {
				e.ErrorCode = e.Status()
			}
			c.fail(wsframe.ClosePolicyViolation, reason, protocol.ConnectionError(&e))
			return false
		}
		c.initialised = true
		c.enqueue(outFrame{kind: outAck, b: protocol.ConnectionAck(c.s.cfg.ConnectionTimeout.Milliseconds())})
		return true
	}
	switch f.Type {
	case protocol.TypeConnectionInit:
		c.send(protocol.Failure(protocol.TypeError, "", protocol.BadRequest("connection already initialised")))
	case protocol.TypeSubscribe:
		c.subscribe(f)
	case protocol.TypeUnsubscribe:
		c.unsubscribe(f)
	case protocol.TypePublish:
		c.publish(f)
	default:
		c.send(protocol.Failure(protocol.TypeError, idIfValid(f.ID), &protocol.Error{
			ErrorType: protocol.ErrTypeUnsupported,
			Message:   fmt.Sprintf("unsupported message type %.40q", f.Type),
		}))
	}
	return true
}

func idIfValid(id string) string {
	if protocol.ValidID(id) {
		return id
	}
	return ""
}

// identityFor returns the identity an operation runs as: the connection's,
// or, when the frame carries different credentials, theirs (verified once
// and remembered).
func (c *conn) identityFor(ctx context.Context, auth map[string]string) (identity.Identity, *protocol.Error) {
	c.checkRevocations()
	cred := credentialFromAuthorization(auth)
	if cred.empty() || cred == c.cred {
		if c.ident.Expired(time.Now()) {
			return identity.Identity{}, protocol.Unauthorized(reasonExpired)
		}
		return c.ident, nil
	}
	if id, ok := c.extra[cred]; ok && !id.Expired(time.Now()) {
		return id, nil
	}
	id, perr := c.s.verify(ctx, cred)
	if perr != nil {
		return identity.Identity{}, perr
	}
	if c.extra == nil || len(c.extra) >= maxExtraCredentials {
		c.extra = make(map[credential]identity.Identity, maxExtraCredentials)
	}
	c.extra[cred] = id
	return id, nil
}

// checkRevocations clears the identity and decision caches when a
// revocation arrived since they were filled.
func (c *conn) checkRevocations() {
	if e := c.s.revocations.Load(); e != c.cacheEpoch {
		c.cacheEpoch = e
		clear(c.extra)
		clear(c.decisions)
	}
}

// decide runs (or recalls) the authz decision for op on ch.
func (c *conn) decide(ctx context.Context, id identity.Identity, op string, ch channel.Channel) *protocol.Error {
	c.checkRevocations()
	key := op + "\x00" + ch.String() + "\x00" + id.Issuer + "\x00" + id.Sub
	if perr, ok := c.decisions[key]; ok {
		return perr
	}
	perr := c.s.check(ctx, id, op, ch.String())
	if perr != nil && perr.ErrorType != protocol.ErrTypeUnauthorized {
		return perr // failures are not decisions: do not cache them
	}
	if len(c.decisions) >= MaxDecisionCache {
		clear(c.decisions)
	}
	c.decisions[key] = perr
	return perr
}

func (c *conn) subscribe(f protocol.Frame) {
	fail := func(e *protocol.Error) { c.send(protocol.Failure(protocol.TypeSubscribeError, idIfValid(f.ID), e)) }
	if !protocol.ValidID(f.ID) {
		fail(protocol.BadRequest("subscription id must match ^[a-zA-Z0-9-_+]{1,128}$"))
		return
	}
	if _, dup := c.subs[f.ID]; dup {
		fail(protocol.BadRequest("subscription id " + f.ID + " is already in use on this connection"))
		return
	}
	if len(c.subs) >= c.s.cfg.MaxSubscriptionsPerConn {
		fail(&protocol.Error{ErrorType: protocol.ErrTypeMaxSubscriptions, Message: fmt.Sprintf("at most %d subscriptions per connection", c.s.cfg.MaxSubscriptionsPerConn)})
		return
	}
	if f.Channel == "" {
		fail(protocol.BadRequest("subscribe needs a channel"))
		return
	}
	ch, err := channel.ParsePattern(f.Channel)
	if err != nil {
		fail(protocol.BadRequest(err.Error()))
		return
	}
	ctx := context.Background()
	id, perr := c.identityFor(ctx, f.Authorization)
	if perr != nil {
		fail(perr)
		return
	}
	if perr := c.decide(ctx, id, bus.OpSubscribe, ch); perr != nil {
		fail(perr)
		return
	}
	sub := &subscription{ch: ch, subjects: ch.Subjects(c.s.subj.Prefix())}
	if err := c.s.hub.Add(sub.subjects, hub.Member{Sink: c, ID: f.ID}, FlushTimeout); err != nil {
		c.logger().Warn("subscribe failed", "channel", ch.String(), "err", err)
		fail(protocol.Unavailable("could not subscribe: message bus unavailable"))
		return
	}
	c.subs[f.ID] = sub
	c.s.metrics.subsActive.Inc()
	c.send(protocol.Success(protocol.TypeSubscribeSuccess, f.ID))
}

func (c *conn) unsubscribe(f protocol.Frame) {
	sub, ok := c.subs[f.ID]
	if !ok {
		c.send(protocol.Failure(protocol.TypeUnsubscribeError, idIfValid(f.ID), protocol.BadRequest("no subscription with this id")))
		return
	}
	delete(c.subs, f.ID)
	c.s.metrics.subsActive.Dec()
	c.s.hub.Remove(sub.subjects, hub.Member{Sink: c, ID: f.ID})
	c.send(protocol.Success(protocol.TypeUnsubscribeSuccess, f.ID))
	c.cancelUnwatched()
}

// cancelUnwatched cancels remembered requests whose answer channel no
// remaining subscription of this socket covers.
func (c *conn) cancelUnwatched() {
	var ids []string
	for i, r := range c.recent {
		if r.id == "" {
			continue
		}
		out, err := channel.New(bus.NamespaceOutbound, r.channelID)
		if err != nil {
			continue
		}
		watched := false
		for _, sub := range c.subs {
			if sub.ch.Matches(out) {
				watched = true
				break
			}
		}
		if !watched {
			ids = append(ids, r.id)
			c.recent[i] = recentRequest{}
		}
	}
	c.s.cancelRequests(c.ident, ids)
}

func (c *conn) remember(reqIDs []string, channelID string) {
	if c.recent == nil {
		c.recent = make([]recentRequest, RecentRequests)
	}
	for _, id := range reqIDs {
		c.recent[c.recentNext] = recentRequest{id: id, channelID: channelID}
		c.recentNext = (c.recentNext + 1) % RecentRequests
	}
}

func (c *conn) publish(f protocol.Frame) {
	fail := func(e *protocol.Error) { c.send(protocol.Failure(protocol.TypePublishError, idIfValid(f.ID), e)) }
	if !protocol.ValidID(f.ID) {
		fail(protocol.BadRequest("publish id must match ^[a-zA-Z0-9-_+]{1,128}$"))
		return
	}
	ch, payloads, perr := c.s.validatePublish(f.Channel, f.HasEvents, f.Events)
	if perr != nil {
		fail(perr)
		return
	}
	if !c.bucket.take(len(payloads), time.Now()) {
		fail(protocol.LimitExceeded(fmt.Sprintf("publish rate limit: at most %g events per second (bursts of %d) per connection", c.s.cfg.PublishRate, c.s.cfg.PublishBurst)))
		return
	}
	ctx, span := telemetry.Start(context.Background(), spanWSPublish, trace.SpanKindServer)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("gatehouse.channel.namespace", ch.Namespace()), attribute.Int("gatehouse.events", len(payloads)))
	}
	id, perr := c.identityFor(ctx, f.Authorization)
	if perr != nil {
		fail(perr)
		return
	}
	if perr := c.decide(ctx, id, bus.OpPublish, ch); perr != nil {
		fail(perr)
		return
	}
	res, stored, perr := c.s.publishEvents(ctx, id, ch, payloads)
	if perr != nil {
		fail(perr)
		return
	}
	c.remember(stored, id.ChannelID)
	c.s.metrics.published[transportWebSocket].Add(float64(len(res.Successful)))
	if len(res.Successful) == 0 && len(res.Failed) > 0 {
		first := res.Failed[0]
		fail(&protocol.Error{ErrorType: protocol.ErrTypeUnavailable, Message: first.Message})
		return
	}
	c.send(protocol.PublishSuccess(f.ID, res))
}
