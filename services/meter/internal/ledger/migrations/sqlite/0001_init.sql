-- usage_records is the usage ledger: one row per finished request,
-- idempotent by request_id. Its name and columns are a contract (the
-- whole-system tests read it directly).
--
-- SQLite dialect: cached and estimated are INTEGER 0/1; started_at and
-- finished_at are INTEGER milliseconds since the Unix epoch (UTC).
CREATE TABLE IF NOT EXISTS usage_records (
    request_id      TEXT PRIMARY KEY,
    sub             TEXT NOT NULL DEFAULT '',
    issuer          TEXT NOT NULL DEFAULT '',
    tenant          TEXT NOT NULL DEFAULT '',
    channel_id      TEXT NOT NULL DEFAULT '',
    key_id          TEXT NOT NULL DEFAULT '',
    model_id        TEXT NOT NULL DEFAULT '',
    provider        TEXT NOT NULL DEFAULT '',
    conversation_id TEXT NOT NULL DEFAULT '',
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    total_tokens    INTEGER NOT NULL DEFAULT 0,
    cached          INTEGER NOT NULL DEFAULT 0,
    estimated       INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT '',
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS usage_records_sub_finished_at_idx ON usage_records (sub, finished_at);
CREATE INDEX IF NOT EXISTS usage_records_tenant_finished_at_idx ON usage_records (tenant, finished_at);
