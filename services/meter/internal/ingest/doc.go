// Package ingest moves usage records from the JetStream USAGE stream into
// the ledger: it pulls batches from the durable consumer, terminates
// poison messages, writes each batch in one transaction and acknowledges
// the messages only after the commit. A failed write is negatively
// acknowledged with a growing delay, so nothing is lost; since the ledger
// ignores request ids it already holds, a redelivery is never counted twice.
package ingest
