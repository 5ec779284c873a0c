// Package edge is Gatehouse's only public listener: an AppSync
// Events–compatible WebSocket endpoint (GET /event/realtime), HTTP publish
// (POST /event), health endpoints, Prometheus metrics (GET /metrics, see
// metrics.go; off with [Config.DisableMetrics]), and a mux other HTTP APIs
// are added to with [Service.Handle].
//
// A socket authenticates once at connect (credentials in the
// "header-<base64url JSON>" subprotocol or in ordinary Authorization /
// x-api-key upgrade headers, verified by authz on gh.authz.v1.verify). Every
// subscribe and publish is decided by authz on gh.authz.v1.check, and the
// decision is cached for the life of the socket. HTTP callers (POST /event
// and the OpenAI-compatible API) are verified and checked the same way, and
// their identities and decisions are cached by a hash of the credential for
// at most [IdentityCacheTTL] and never past the token's expiry
// ([MaxIdentityCache] credentials). Subscriptions map to NATS
// subjects through the channel grammar and are refcounted: one NATS
// subscription per subject per process, however many sockets listen.
// Publishes to /Inbound-Messages/... are stored in the INBOUND JetStream
// stream (acknowledged before publish_success); other namespaces are core
// NATS publishes.
//
// The edge does the WebSocket handshake and framing itself (upgrade.go,
// internal/wsframe) so that an idle socket holds no goroutine and no
// buffer. Reading: on Linux every socket's connection is non-blocking after
// the upgrade and registered with one epoll set (internal/netpoll); when
// bytes arrive a short-lived goroutine reads and handles every complete
// client message, in order, until the connection would block, then re-arms
// and exits (elsewhere each socket keeps one blocking reader goroutine).
// Writing: outgoing frames go into the socket's bounded queue (which costs
// no memory while empty), and a socket with frames queued gets one
// short-lived writer goroutine that encodes everything queued and writes it
// as one batch (one write to the connection) under [Config.WriteTimeout],
// repeats while more arrives and
// exits when the queue is empty; there is at most one per socket, so frames
// are written in queue order, and a peer that stops reading blocks only its
// own writer. Keep-alives and the token-expiry close are timers. The NATS
// fan-out path never blocks: it encodes each event once for all
// subscribers, enqueues, and wakes the writers when no further event of the
// subject is already waiting (at most [DeliveryBatch] events later), so
// bursts are batched. A socket whose queue is full, or that cannot take a
// batch within WriteTimeout, is disconnected as a slow consumer.
//
// Protection: connection limits in total and per identity, a token-bucket
// publish rate per socket, subscription, event, read and delivery size
// limits, write timeouts, close at token expiry, and a graceful drain (1001)
// when Run's context ends. Revocations broadcast on gh.authz.v1.revoked clear
// the HTTP callers' cache and every socket's cached identities and
// decisions, and close the sockets of
// the revoked key or user; gh.edge.v1.disconnect lets an operator drop a
// caller's sockets.
package edge
