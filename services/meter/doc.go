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
// Quotas: with [Config.Quota] plans declared, reserve and settle enforce
// them (package internal/quota): every API key, user and tenant bound by a
// plan has one key in the JetStream KV bucket [bus.Subjects.QuotaBucket],
// updated by compare-and-set on its revision, so any number of meter
// replicas agree. Reserve takes input + maximum output tokens (and the
// maximum cost) from each budget in turn (key, user, tenant) and releases
// what it took if a later one refuses; settle replaces the reservation
// with the actual usage (a cached answer, Usage.Cached, counts only where
// the plan counts cached answers, however it was reserved); an unsettled reservation stops counting after
// [QuotaConfig.ReservationTTL]. A refusal names the scope, window, metric,
// amount used, limit, when it resets and retryAfterSeconds. A subject
// with no key (new, or idle past [bus.QuotaStateMaxAge]) is rebuilt from
// the ledger. Without plans every reservation is granted with an empty
// window list. Requests are validated all the same (400 naming the field).
//
// Ledger maintenance (Postgres): records are partitioned by UTC day;
// [Config.PartitionsAhead] partitions beyond today are kept ready and
// partitions older than [Config.RetentionDays] dropped, every
// [Config.MaintenanceInterval]. Hourly rollups (usage_hourly, per tenant,
// user, key and model) are updated in the statement that inserts a batch
// and are kept when records expire.
//
// A usage query covers records finished in [From, To), at most
// [MaxUsageRange] long. A caller sees their own usage (records with their
// sub and issuer); members of [Config.AdminGroup] may set Sub to read
// anyone's (that sub under any issuer), or [AllUsers] for everyone's;
// Gatehouse services (the operator CLI) may too. GroupBy is "" (one total
// row), "user", "key", "model", "hour" (Group "2006-01-02T15:00:00Z", UTC) or "day"
// (Group "2006-01-02", UTC); rows are ordered by group. On Postgres a
// range on whole hours is answered from the hourly rollups.
//
// The usage_records table is a contract read by other tools. In SQLite its
// booleans are INTEGER 0/1 and its times INTEGER Unix milliseconds (UTC).
package meter
