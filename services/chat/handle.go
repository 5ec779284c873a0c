package chat

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackTimeout bounds the synchronous acknowledgement of a request.
const ackTimeout = 5 * time.Second

// handle takes one INBOUND message through intake: headers, decoding,
// stop requests, validation and acknowledgement, then answers it.
func (s *Service) handle(ctx context.Context, msg jetstream.Msg) {
	started := time.Now()
	h := msg.Headers()
	log := s.log.With("subject", msg.Subject())

	idHeader := h.Get(bus.HeaderIdentity)
	who, err := identity.Decode(idHeader)
	if err != nil {
		s.term(msg, log, "missing or invalid identity header", err)
		return
	}
	reqID := h.Get(bus.HeaderRequestID)
	if !bus.ValidToken(reqID) {
		s.term(msg, log, "missing or invalid request id header", nil)
		return
	}
	log = log.With("requestId", reqID, "user", who.Subject())
	target := s.subj.Outbound(who.ChannelID)
	if rt := h.Get(bus.HeaderReplyTo); rt != "" {
		if !s.validReplyTo(rt) {
			s.term(msg, log, "invalid reply-to header", nil)
			return
		}
		target = rt
	}
	em := &emitter{nc: s.nc, log: log, subject: target, reqID: reqID}

	req, err := bus.DecodeChatRequest(msg.Data())
	if err != nil {
		// Nothing to retry, but the client can be told.
		s.term(msg, log, "undecodable chat request", err)
		em.fail(bus.ErrTypeValidation, err.Error(), nil)
		return
	}
	if len(req.ConversationID) <= MaxConversationIDBytes {
		em.convID = req.ConversationID
	}

	if req.Stop != "" && len(req.Messages) == 0 {
		if !s.ack(msg, log) {
			return
		}
		s.stop(req.Stop, idHeader, em, log)
		return
	}
	v, rerr := s.validate(&req)
	if !s.ack(msg, log) {
		return
	}
	if rerr != nil {
		log.Info("chat request refused", "reason", rerr.Message)
		em.fail(rerr.Type, rerr.Message, nil)
		return
	}
	s.answer(ctx, &job{
		who:     who,
		reqID:   reqID,
		req:     &req,
		v:       v,
		em:      em,
		log:     log.With("model", v.model.ID),
		started: started,
	})
}

// ack acknowledges msg and waits for JetStream to confirm, so that a
// request is never run twice. On failure the request is not run: if the
// acknowledgement was lost, JetStream redelivers it.
func (s *Service) ack(msg jetstream.Msg, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("acknowledge chat request failed; leaving it for redelivery", "err", err)
		return false
	}
	return true
}

// term drops a message that can never be processed.
func (s *Service) term(msg jetstream.Msg, log *slog.Logger, reason string, err error) {
	log.Warn("dropping chat request: "+reason, "err", err)
	if terr := msg.TermWithReason(reason); terr != nil {
		log.Warn("terminate chat request", "err", terr)
	}
}

// validReplyTo reports whether rt is a reply subject under this prefix:
// Prefix.reply. followed by one or more clean tokens.
func (s *Service) validReplyTo(rt string) bool {
	rest, ok := strings.CutPrefix(rt, s.subj.Prefix()+".reply.")
	if !ok {
		return false
	}
	for tok := range strings.SplitSeq(rest, ".") {
		if !bus.ValidToken(tok) {
			return false
		}
	}
	return true
}

// stop relays a stop request to whichever replica runs the generation; the
// identity header travels with it so only the owner can stop it.
func (s *Service) stop(stopID, idHeader string, em *emitter, log *slog.Logger) {
	if !bus.ValidToken(stopID) {
		em.fail(bus.ErrTypeValidation, "stop is not a valid request id", nil)
		return
	}
	m := &nats.Msg{Subject: s.subj.Cancel(stopID), Header: nats.Header{bus.HeaderIdentity: {idHeader}}}
	if err := s.nc.PublishMsg(m); err != nil {
		log.Warn("publish cancel", "err", err, "stop", stopID)
		em.fail(bus.ErrTypeInternal, "could not stop the request; try again", nil)
		return
	}
	log.Info("stop requested", "stop", stopID)
}
