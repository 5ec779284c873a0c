// Package meter is Gatehouse's metering service: it owns the usage ledger
// and the quota endpoints (DESIGN.md section 6).
//
// [Service.Run] opens the ledger (Postgres when [Config.DatabaseURL] is a
// postgres:// URL, otherwise a SQLite file), applies the versioned schema
// migrations, consumes the USAGE JetStream stream with the durable consumer
// "ledger" — batches of up to [Config.BatchSize] records, each written in
// one transaction, idempotent by request id, acknowledged only after the
// commit — and serves the micro service "gatehouse-meter" (queue group
// "meter") with three endpoints:
//
//   - reserve (gh.meter.v1.reserve): [bus.ReserveRequest] -> [bus.ReserveResponse]
//   - settle (gh.meter.v1.settle): [bus.SettleRequest] -> [bus.SettleResponse]
//   - usage (gh.meter.v1.usage): [bus.UsageQuery] -> [bus.UsageResponse]
//
// Quota limits are not enforced yet: reserve always grants with an empty
// window list and settle returns an empty list. Requests are validated all
// the same (400 naming the field).
//
// A usage query covers records finished in [From, To), at most
// [MaxUsageRange] long. A caller sees their own usage (records with their
// sub and issuer); members of [Config.AdminGroup] may set Sub to read
// anyone's (that sub under any issuer). GroupBy is "" (one total row),
// "model", "hour" (Group "2006-01-02T15:00:00Z", UTC) or "day"
// (Group "2006-01-02", UTC); rows are ordered by group.
//
// The usage_records table is a contract read by other tools. In SQLite its
// booleans are INTEGER 0/1 and its times INTEGER Unix milliseconds (UTC).
package meter
