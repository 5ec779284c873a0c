package stack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// microServices are the request/reply services, by their micro names.
var microServices = []string{"gatehouse-authz", "gatehouse-meter", "gatehouse-cache"}

// waitServing blocks until every micro service answers a ping and chat's
// durable consumer exists, so that "ready" means a request can be served end
// to end, not merely that the edge listens.
func waitServing(ctx context.Context, nc *nats.Conn, subj bus.Subjects) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pending := append([]string(nil), microServices...)
	for {
		var still []string
		for _, name := range pending {
			pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			_, err := nc.RequestWithContext(pctx, "$SRV.PING."+name, nil)
			cancel()
			if err != nil {
				still = append(still, name)
			}
		}
		pending = still
		if len(pending) == 0 {
			cctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			_, err := js.Consumer(cctx, subj.StreamInbound(), bus.ConsumerChat)
			cancel()
			if err == nil {
				return nil
			}
			if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("chat consumer: %w", err)
			}
			pending = nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("services not serving (waiting for %v, chat consumer): %w", pending, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
