// Package ledger is meter's usage ledger: the [Store] interface over the
// usage_records table, its Postgres (pgx v5) and SQLite (modernc.org/sqlite)
// implementations, and the versioned, embedded schema migrations of both.
//
// Writes are idempotent by request id: inserting a record whose request id
// is already stored is a no-op, so a redelivered usage message never counts
// twice. In Postgres, usage_records is partitioned by UTC day of
// finished_at with primary key (request_id, finished_at): a record is
// immutable, so a redelivery has the same finished_at, lands in the same
// partition and collides with itself. The hourly rollups in usage_hourly
// are updated from the rows actually inserted, in the same statement.
//
// The Postgres write path of a batch is one transaction: a binary COPY
// into a session-local TEMP staging table (unlogged, emptied at commit),
// then per UTC day one INSERT ... SELECT straight into that day's
// partition, whose RETURNING rows feed the rollup upsert of the same
// statement. The batch is first inserted without ON CONFLICT (cheaper per
// record); a request id already stored fails that transaction with a
// unique violation, and the batch is written again with ON CONFLICT DO
// NOTHING, as are the batches after it until one holds no duplicate. The
// binary COPY rows are encoded by the package itself (copy_pg.go). Only the staging table is
// unlogged; usage_records and usage_hourly are ordinary WAL-logged tables
// committed with the server's synchronous_commit, so a record acknowledged
// after InsertBatch returns survives a Postgres crash. The key text
// columns use COLLATE "C" (byte order, as SQLite's BINARY) and
// usage_hourly has fillfactor 50 so its upserts are HOT updates; see
// migration 0003.
//
// SQLite dialect notes: cached and estimated are INTEGER 0/1, and
// started_at and finished_at are INTEGER milliseconds since the Unix epoch,
// UTC. Postgres uses BOOLEAN and TIMESTAMPTZ.
package ledger
