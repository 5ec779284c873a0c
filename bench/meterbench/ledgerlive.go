package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/gatehouse-ai/gatehouse/services/meter"
)

// benchLedgerLive starts the meters, then publishes records to USAGE at
// rate records/s (a tick every 10 ms) while they write, the way chat
// workers produce them. Every second it reads how far the ledger is
// behind (published minus acknowledged, and meter acknowledges only after
// commit). It reports the rate achieved, the largest lag seen, and how
// long the ledger needed after the last publish to hold everything: a
// ledger that keeps up ends within about one flush of the producer.
func benchLedgerLive(db string, rate, records, batch, replicas, writers int) {
	e := newEnv(db)
	defer e.close()
	js, subj, closeProducer := e.producer()
	defer closeProducer()
	ctx := context.Background()
	stop := e.startMeters(replicas, meter.Config{Logger: quiet(), DatabaseURL: e.dbURL, BatchSize: batch, FlushInterval: 50 * time.Millisecond, LedgerWriters: writers})
	defer stop()

	acked := func() uint64 {
		ci, err := js.Consumer(ctx, subj.StreamUsage(), bus.ConsumerLedger)
		if err != nil {
			log.Fatal(err)
		}
		info, err := ci.Info(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return info.Delivered.Stream
		}
		return info.AckFloor.Stream
	}
	const tick = 10 * time.Millisecond
	perTick := max(1, rate/int(time.Second/tick))
	now := time.Now().UTC()
	start := time.Now()
	first := sampleCPU()
	nextReport := start.Add(time.Second)
	var maxLag uint64
	published := 0
	for published < records {
		n := min(perTick, records-published)
		for i := range n {
			publishRecord(js, subj, now, published+i)
		}
		published += n
		if time.Now().After(nextReport) {
			if lag := uint64(published) - acked(); lag > maxLag {
				maxLag = lag
			}
			nextReport = nextReport.Add(time.Second)
		}
		due := start.Add(time.Duration(published/perTick) * tick)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	<-js.PublishAsyncComplete()
	lastPublish := time.Now()
	pubElapsed := lastPublish.Sub(start)
	for acked() < uint64(records) {
		time.Sleep(10 * time.Millisecond)
	}
	done := time.Now()
	last := sampleCPU()
	e.checkLedger(records)
	goCPU, pgCPU := perRecord(first, last, uint64(records))
	fmt.Printf("ledger live: replicas=%d batch=%d target=%d records/s  published %d in %s (%.0f records/s)  in the ledger %s after the last publish (%.0f records/s end to end)  max lag %d records  cpu/record: producer+meter+nats %.1f µs, postgres %.1f µs\n",
		replicas, batch, rate, records, pubElapsed.Round(time.Millisecond), float64(records)/pubElapsed.Seconds(),
		done.Sub(lastPublish).Round(time.Millisecond), float64(records)/done.Sub(start).Seconds(), maxLag, goCPU, pgCPU)
}
