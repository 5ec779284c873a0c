package chat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// undeliveredMessage is the error message of a request that JetStream gave
// up because its worker never acknowledged it.
const undeliveredMessage = "the request was accepted but not processed (its worker stopped); try again"

// maxDeliveriesAdvisory is the part of JetStream's
// io.nats.jetstream.advisory.v1.max_deliver advisory that chat reads.
type maxDeliveriesAdvisory struct {
	Stream    string `json:"stream"`
	Consumer  string `json:"consumer"`
	StreamSeq uint64 `json:"stream_seq"`
}

// maxDeliveriesSubject is where JetStream announces that a message of the
// chat consumer reached MaxDeliver without an acknowledgement.
func (s *Service) maxDeliveriesSubject() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + s.subj.StreamInbound() + "." + bus.ConsumerChat
}

// onUndelivered answers a request that was pulled but never acknowledged
// within AckWait (its worker died first): JetStream does not redeliver it
// (MaxDeliver is 1) but announces it; one replica of the queue group reads
// the message, deletes it from INBOUND (its claim: a late worker that finds
// it gone does not run it) and sends the caller one internal_error event.
// Nothing was reserved, so nothing is settled or recorded.
func (s *Service) onUndelivered(m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		s.log.Warn("ignoring an undecodable max-deliveries advisory", "err", err)
		return
	}
	log := s.log.With("seq", adv.StreamSeq)
	ctx, cancel := context.WithTimeout(context.Background(), ClaimTimeout)
	defer cancel()
	raw, err := s.inbound.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return // claimed by a late worker, or expired
		}
		log.Warn("read undelivered chat request", "err", err)
		return
	}
	if err := s.inbound.DeleteMsg(ctx, adv.StreamSeq); err != nil {
		if !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			log.Warn("delete undelivered chat request", "err", err)
		}
		return // claimed by a late worker meanwhile
	}
	_, em, problem, err := s.emitterFor(raw.Header, log)
	if problem != "" {
		log.Warn("undelivered chat request: "+problem, "err", err)
		return
	}
	if req, err := bus.DecodeChatRequest(raw.Data); err == nil && len(req.ConversationID) <= MaxConversationIDBytes {
		em.convID = req.ConversationID
	}
	em.log.Warn("chat request was never acknowledged by its worker; answering it with an error")
	em.fail(bus.ErrTypeInternal, undeliveredMessage, nil)
}

// emitterFor reads the headers h of a request: who asks, its request id
// and where its events go (the caller's outbound channel, or a valid
// reply subject). When a header is missing or invalid, problem names it
// (err may add the cause) and em is nil.
func (s *Service) emitterFor(h nats.Header, log *slog.Logger) (who identity.Identity, em *emitter, problem string, err error) {
	who, err = identity.Decode(h.Get(bus.HeaderIdentity))
	if err != nil {
		return who, nil, "missing or invalid identity header", err
	}
	reqID := h.Get(bus.HeaderRequestID)
	if !bus.ValidToken(reqID) {
		return who, nil, "missing or invalid request id header", nil
	}
	target := s.subj.Outbound(who.ChannelID)
	if rt := h.Get(bus.HeaderReplyTo); rt != "" {
		if !s.validReplyTo(rt) {
			return who, nil, "invalid reply-to header", nil
		}
		target = rt
	}
	log = log.With("requestId", reqID, "user", who.Subject())
	return who, &emitter{nc: s.nc, log: log, subject: target, reqID: reqID}, "", nil
}
