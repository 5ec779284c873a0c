-- usage_records is the usage ledger: one row per finished request,
-- idempotent by request_id. Its name and columns are a contract (the
-- whole-system tests read it directly). Unqualified names: the table is
-- created in the first schema of the connection's search_path.
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
    input_tokens    BIGINT NOT NULL DEFAULT 0,
    output_tokens   BIGINT NOT NULL DEFAULT 0,
    total_tokens    BIGINT NOT NULL DEFAULT 0,
    cached          BOOLEAN NOT NULL DEFAULT FALSE,
    estimated       BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT NOT NULL DEFAULT '',
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS usage_records_sub_finished_at_idx ON usage_records (sub, finished_at);
CREATE INDEX IF NOT EXISTS usage_records_tenant_finished_at_idx ON usage_records (tenant, finished_at);
