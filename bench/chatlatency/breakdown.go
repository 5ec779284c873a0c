package main

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/pkg/identity"
)

// breakdown times, one at a time and n times each, every bus step the
// HTTP chat path takes before the upstream call, against the running dev
// stack over an in-process NATS connection: authz verify and check, the
// INBOUND-like JetStream store (a scratch work-queue stream with INBOUND's
// storage, passed as storage, and chat's MaxDeliver 1), pull, then chat's asynchronous ack
// (metadata read plus Ack) or, on every other message, the double ack chat
// used before, cache get and meter reserve (settled afterwards, untimed).
// It prints p50, p90 and p99 per step; the two ack rows have n/2 samples.
func breakdown(nc *nats.Conn, prefix string, storage jetstream.StorageType, token string, n int) {
	ctx := context.Background()
	subj := bus.NewSubjects(prefix)
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "CHATLATENCY", Subjects: []string{"chatlatency.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: storage,
	})
	if err != nil {
		log.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1})
	if err != nil {
		log.Fatal(err)
	}
	ver, err := bus.Request[bus.VerifyResponse](ctx, nc, subj.AuthzVerify(), bus.VerifyRequest{Token: token}, nil)
	if err != nil {
		log.Fatal(err)
	}
	id := ver.Identity
	idHeader, err := identity.Encode(id)
	if err != nil {
		log.Fatal(err)
	}
	steps := []struct {
		name string
		do   func(i int) error
	}{
		{"authz verify", func(int) error {
			_, err := bus.Request[bus.VerifyResponse](ctx, nc, subj.AuthzVerify(), bus.VerifyRequest{Token: token}, nil)
			return err
		}},
		{"authz check", func(int) error {
			_, err := bus.Request[bus.CheckResponse](ctx, nc, subj.AuthzCheck(), bus.CheckRequest{Identity: id, Op: bus.OpPublish, Channel: "/" + bus.NamespaceInbound + "/" + id.ChannelID}, nil)
			return err
		}},
		{"JetStream publish+ack", func(i int) error {
			m := &nats.Msg{Subject: "chatlatency.x", Data: make([]byte, 200), Header: nats.Header{}}
			m.Header.Set(bus.HeaderIdentity, idHeader)
			m.Header.Set(bus.HeaderMsgID, fmt.Sprintf("bd-%d-%d", time.Now().UnixNano(), i))
			_, err := js.PublishMsg(ctx, m)
			return err
		}},
		{"pull (next)", nil}, // filled below: timed around Next
		{"ack (async, chat now)", nil},
		{"double ack (chat before)", nil},
		{"cache get (miss)", func(i int) error {
			_, err := bus.Request[bus.CacheGetResponse](ctx, nc, subj.CacheGet(), bus.CacheGetRequest{Key: fmt.Sprintf("%064x", time.Now().UnixNano()+int64(i))}, nil)
			return err
		}},
		{"meter reserve", nil},
	}
	times := make([][]time.Duration, len(steps))
	for i := 0; i < n; i++ {
		for k, st := range steps {
			switch st.name {
			case "pull (next)", "ack (async, chat now)", "double ack (chat before)":
				continue
			case "meter reserve":
				rid := fmt.Sprintf("bd%d%d", time.Now().UnixNano(), i)
				t0 := time.Now()
				_, err := bus.Request[bus.ReserveResponse](ctx, nc, subj.MeterReserve(), bus.ReserveRequest{RequestID: rid, Identity: id, ModelID: "fake", InputTokens: 10, MaxOutputTokens: 256}, nil)
				times[k] = append(times[k], time.Since(t0))
				if err != nil {
					log.Fatalf("%s: %v", st.name, err)
				}
				if _, err := bus.Request[bus.SettleResponse](ctx, nc, subj.MeterSettle(), bus.SettleRequest{RequestID: rid, Identity: id, ModelID: "fake", Usage: bus.Usage{InputTokens: 10, OutputTokens: 10, TotalTokens: 20}}, nil); err != nil {
					log.Fatalf("settle: %v", err)
				}
				continue
			}
			t0 := time.Now()
			err := st.do(i)
			times[k] = append(times[k], time.Since(t0))
			if err != nil {
				log.Fatalf("%s: %v", st.name, err)
			}
			if st.name == "JetStream publish+ack" {
				t0 = time.Now()
				m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
				times[k+1] = append(times[k+1], time.Since(t0))
				if err != nil {
					log.Fatalf("next: %v", err)
				}
				t0 = time.Now()
				if i%2 == 0 {
					_, err = m.Metadata()
					if err == nil {
						err = m.Ack()
					}
					times[k+2] = append(times[k+2], time.Since(t0))
				} else {
					err = m.DoubleAck(ctx)
					times[k+3] = append(times[k+3], time.Since(t0))
				}
				if err != nil {
					log.Fatalf("ack: %v", err)
				}
			}
		}
	}
	_ = js.DeleteStream(ctx, "CHATLATENCY")
	fmt.Printf("\nbus steps, one at a time, n=%d each (pull is a fresh Next, an upper bound of chat's waiting pull)\n\n", n)
	fmt.Println("| step | p50 | p90 | p99 |")
	fmt.Println("|---|---|---|---|")
	var sum50 time.Duration
	for k, st := range steps {
		ds := slices.Clone(times[k])
		slices.Sort(ds)
		if st.name != "double ack (chat before)" {
			sum50 += pct(ds, 50)
		}
		fmt.Printf("| %s | %s | %s | %s |\n", st.name, ms(pct(ds, 50)), ms(pct(ds, 90)), ms(pct(ds, 99)))
	}
	fmt.Printf("| sum of p50 (without the double ack) | %s | | |\n", ms(sum50))
}
