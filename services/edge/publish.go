package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/channel"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
	"github.com/gatehouse-ai/gatehouse/services/edge/internal/protocol"
)

// validatePublish checks a publish's channel and events. Each event must be
// a JSON string whose content is valid JSON of at most MaxEventBytes; the
// returned payloads are those contents.
func (s *Service) validatePublish(chPath string, hasEvents bool, events []json.RawMessage) (channel.Channel, [][]byte, *protocol.Error) {
	if chPath == "" {
		return channel.Channel{}, nil, protocol.BadRequest("publish needs a channel")
	}
	ch, err := channel.Parse(chPath)
	if err != nil {
		return channel.Channel{}, nil, protocol.BadRequest(err.Error())
	}
	if !hasEvents || len(events) == 0 {
		return channel.Channel{}, nil, protocol.BadRequest(fmt.Sprintf("publish needs 1 to %d events", s.cfg.MaxEventsPerPublish))
	}
	if len(events) > s.cfg.MaxEventsPerPublish {
		return channel.Channel{}, nil, protocol.BadRequest(fmt.Sprintf("too many events: %d, at most %d per publish", len(events), s.cfg.MaxEventsPerPublish))
	}
	payloads := make([][]byte, len(events))
	for i, raw := range events {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return channel.Channel{}, nil, protocol.BadRequest(fmt.Sprintf("event %d must be a JSON string (the stringified event), not %s", i, jsonKind(raw)))
		}
		if len(str) > s.cfg.MaxEventBytes {
			return channel.Channel{}, nil, protocol.BadRequest(fmt.Sprintf("event %d is too big: %d bytes, at most %d", i, len(str), s.cfg.MaxEventBytes))
		}
		if !json.Valid([]byte(str)) {
			return channel.Channel{}, nil, protocol.BadRequest(fmt.Sprintf("event %d is not valid JSON inside its string", i))
		}
		payloads[i] = []byte(str)
	}
	return ch, payloads, nil
}

func jsonKind(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "invalid JSON"
	}
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "another type"
}

// publishEvents stores or publishes each event with a fresh request id and
// reports, per event, whether it was accepted. Events on the
// Inbound-Messages namespace go to JetStream and wait for its ack; the
// request ids of those that were stored are returned for cancellation.
func (s *Service) publishEvents(ctx context.Context, id identity.Identity, ch channel.Channel, payloads [][]byte) (protocol.PublishResult, []string, *protocol.Error) {
	idHeader, err := identity.Encode(id)
	if err != nil {
		s.log.Error("encode identity", "err", err)
		return protocol.PublishResult{}, nil, protocol.Internal("cannot encode caller identity")
	}
	subject := s.subj.Channel(ch)
	inbound := ch.Namespace() == bus.NamespaceInbound
	res := protocol.PublishResult{Successful: []protocol.PublishedEvent{}, Failed: []protocol.FailedEvent{}}
	var stored []string
	for i, p := range payloads {
		reqID := bus.NewID()
		msg := &nats.Msg{Subject: subject, Data: p, Header: bus.InjectTrace(ctx, nats.Header{})}
		msg.Header.Set(bus.HeaderIdentity, idHeader)
		msg.Header.Set(bus.HeaderRequestID, reqID)
		var perr error
		if inbound {
			msg.Header.Set(bus.HeaderMsgID, reqID)
			pctx, cancel := context.WithTimeout(ctx, PublishTimeout)
			_, perr = s.js.PublishMsg(pctx, msg)
			cancel()
		} else {
			perr = s.nc.PublishMsg(msg)
		}
		if perr != nil {
			code, text := publishFailure(perr)
			s.log.Warn("publish failed", "channel", ch.String(), "request_id", reqID, "err", perr)
			res.Failed = append(res.Failed, protocol.FailedEvent{Identifier: reqID, Index: i, Code: code, Message: text})
			continue
		}
		if inbound {
			stored = append(stored, reqID)
		}
		res.Successful = append(res.Successful, protocol.PublishedEvent{Identifier: reqID, Index: i})
	}
	return res, stored, nil
}

func publishFailure(err error) (int, string) {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return http.StatusServiceUnavailable, "no stream is storing this channel"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return http.StatusGatewayTimeout, "timed out waiting for the event to be stored"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return http.StatusServiceUnavailable, "message bus unavailable"
	}
	return http.StatusInternalServerError, "event could not be stored"
}

// cancelRequests tells chat to stop the given requests (best effort, core
// NATS, fire and forget).
func (s *Service) cancelRequests(id identity.Identity, reqIDs []string) {
	if len(reqIDs) == 0 {
		return
	}
	idHeader, err := identity.Encode(id)
	if err != nil {
		return
	}
	for _, r := range reqIDs {
		msg := &nats.Msg{Subject: s.subj.Cancel(r), Header: nats.Header{}}
		msg.Header.Set(bus.HeaderIdentity, idHeader)
		msg.Header.Set(bus.HeaderRequestID, r)
		if err := s.nc.PublishMsg(msg); err != nil {
			s.log.Debug("cancel publish failed", "request_id", r, "err", err)
		}
	}
}
