// Package ingest moves usage records from the JetStream USAGE stream into
// the ledger: it pulls batches from the durable consumer, terminates
// poison messages, writes each batch in one transaction and acknowledges
// the messages only after the commit. A failed write is negatively
// acknowledged with a growing delay, so nothing is lost; since the ledger
// ignores request ids it already holds, a redelivery is never counted twice.
//
// Pulling and decoding the next batch overlaps the write of the previous
// one: [Consumer.Run] pulls and decodes, and Config.Writers goroutines it
// owns write and settle, so at most Writers+1 pulled batches are
// unacknowledged per consumer. Acknowledgement still follows each
// batch's own commit.
package ingest
