package chat

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// keepInbound stores a keep marker in INBOUND at the start of every
// [bus.InboundKeepInterval] of the wall clock until ctx ends, so that the
// file store's last block always holds a message and removing an
// acknowledged request never deletes and recreates a block file (see
// [bus.InboundKeepInterval]). Every replica does it; the marker's message
// id is the interval's start, so JetStream keeps one per interval.
// Failures are logged at debug level: a missing marker costs speed, not
// correctness.
func (s *Service) keepInbound(ctx context.Context) {
	every := bus.InboundKeepInterval
	for {
		now := time.Now()
		at := now.Truncate(every).Add(every)
		select {
		case <-ctx.Done():
			return
		case <-time.After(at.Sub(now)):
		}
		msg := &nats.Msg{Subject: s.subj.InboundKeep(), Header: nats.Header{
			bus.HeaderMsgID: {"keep-" + strconv.FormatInt(at.UnixMilli(), 10)},
		}}
		pctx, cancel := context.WithTimeout(ctx, every)
		_, err := s.js.PublishMsg(pctx, msg)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Debug("store INBOUND keep marker", "err", err)
		}
	}
}
