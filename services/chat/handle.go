package chat

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// handle takes one INBOUND message through intake: headers, decoding,
// stop requests, validation and acknowledgement, then answers it.
func (s *Service) handle(ctx context.Context, msg jetstream.Msg) {
	started := time.Now()
	h := msg.Headers()
	ctx, span := telemetry.Start(bus.ExtractTrace(ctx, h), "chat request", trace.SpanKindConsumer)
	defer span.End()
	log := s.log.With("subject", msg.Subject())

	who, em, problem, err := s.emitterFor(h, log)
	if problem != "" {
		s.term(msg, log, problem, err)
		return
	}
	log = em.log
	if span.IsRecording() {
		span.SetAttributes(attribute.String(attrRequestID, em.reqID))
	}

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
		if !s.ack(msg, em) {
			return
		}
		s.stop(req.Stop, h.Get(bus.HeaderIdentity), em, log)
		return
	}
	v, rerr := s.validate(&req)
	if !s.ack(msg, em) {
		return
	}
	if rerr != nil {
		failSpan(span, rerr.Type)
		log.Info("chat request refused", "reason", rerr.Message)
		em.fail(rerr.Type, rerr.Message, nil)
		return
	}
	s.answer(ctx, &job{
		who:     who,
		reqID:   em.reqID,
		req:     &req,
		v:       v,
		em:      em,
		log:     log.With("model", v.model.ID),
		started: started,
	})
}

// ack acknowledges msg before it is run. The consumer delivers a request
// once ([MaxDeliver]), so JetStream never runs it again whatever becomes of
// the acknowledgement, and a plain asynchronous Ack suffices: nothing
// waits for a round trip. That holds while JetStream still counts msg as
// pending, which is certain when msg was stored less than half of
// [Config.AckWait] ago (it was delivered after it was stored). An older
// msg may already have been given up and answered as undelivered
// (see undelivered.go), so it is claimed instead. ack reports whether the
// request may run.
func (s *Service) ack(msg jetstream.Msg, em *emitter) bool {
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to acknowledge or claim.
		em.log.Warn("chat request without JetStream metadata; not running it", "err", err)
		return false
	}
	if time.Since(md.Timestamp) < s.cfg.AckWait/2 {
		if err := msg.Ack(); err != nil {
			// Still pending: it is answered as undelivered after AckWait.
			em.log.Warn("acknowledge chat request failed; not running it", "err", err)
			return false
		}
		return true
	}
	return s.claim(msg, md.Sequence.Stream, em)
}

// claim deletes a late request (stored more than half of AckWait ago) from
// INBOUND and reports whether it may run. Deleting is what the
// undelivered-request path does before it answers, so exactly one of the
// two gets the message: if it is gone already, it was answered with
// internal_error and is not run.
func (s *Service) claim(msg jetstream.Msg, seq uint64, em *emitter) bool {
	ctx, cancel := context.WithTimeout(context.Background(), ClaimTimeout)
	defer cancel()
	err := s.inbound.DeleteMsg(ctx, seq)
	switch {
	case err == nil:
		// Also clears the consumer's pending entry, so no advisory follows.
		if err := msg.Ack(); err != nil {
			em.log.Debug("acknowledge claimed chat request", "err", err)
		}
		return true
	case errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful):
		em.log.Warn("late chat request was already answered as undelivered; not running it", "err", err, "seq", seq)
		return false
	default:
		// Unknown outcome: never run it, and answer now rather than rely on
		// the advisory (the client may then see this error twice).
		em.log.Warn("claim late chat request failed; not running it", "err", err, "seq", seq)
		em.fail(bus.ErrTypeInternal, undeliveredMessage, nil)
		return false
	}
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
