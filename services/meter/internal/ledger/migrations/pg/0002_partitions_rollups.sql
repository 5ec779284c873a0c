-- usage_records becomes a table partitioned by UTC day of finished_at,
-- with one partition per day (usage_records_pYYYYMMDD) created ahead by
-- gatehouse_ensure_partition and dropped by retention. The primary key
-- must include the partition key: (request_id, finished_at). A record is
-- immutable once produced (redeliveries carry the same bytes), so the
-- same record always has the same finished_at, lands in the same
-- partition and collides with itself: redelivery never double-counts.
--
-- usage_hourly holds hourly rollups per tenant, user, key and model. The
-- ledger writer updates them in the same statement that inserts the
-- batch, from the rows actually inserted, so they always equal the sums
-- of usage_records.
ALTER TABLE usage_records RENAME TO usage_records_v1;
ALTER INDEX IF EXISTS usage_records_sub_finished_at_idx RENAME TO usage_records_v1_sub_idx;
ALTER INDEX IF EXISTS usage_records_tenant_finished_at_idx RENAME TO usage_records_v1_tenant_idx;

CREATE TABLE usage_records (
    request_id      TEXT NOT NULL,
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
    cost_micro_usd  BIGINT NOT NULL DEFAULT 0,
    cached          BOOLEAN NOT NULL DEFAULT FALSE,
    estimated       BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT NOT NULL DEFAULT '',
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (request_id, finished_at)
) PARTITION BY RANGE (finished_at);

CREATE INDEX usage_records_sub_finished_at_idx ON usage_records (sub, finished_at);
CREATE INDEX usage_records_tenant_finished_at_idx ON usage_records (tenant, finished_at);
CREATE INDEX usage_records_key_finished_at_idx ON usage_records (key_id, finished_at) WHERE key_id <> '';

-- gatehouse_ensure_partition creates the partition of one UTC day unless
-- it exists. Replicas may call it concurrently: an advisory lock per
-- schema serialises the DDL, and a partition created meanwhile is fine.
CREATE OR REPLACE FUNCTION gatehouse_ensure_partition(d date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'usage_records_p' || to_char(d, 'YYYYMMDD');
    lo   timestamptz := d::timestamp AT TIME ZONE 'UTC';
    hi   timestamptz := (d + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('gatehouse-meter-partitions:' || coalesce(current_schema(), ''), 0));
    IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NOT NULL THEN
        RETURN;
    END IF;
    -- The advisory lock does not refresh this backend's catalog cache, so
    -- a partition another replica just created may still look missing.
    BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF usage_records FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    EXCEPTION WHEN duplicate_table THEN
        NULL;
    END;
END
$$;

CREATE TABLE usage_hourly (
    hour           TIMESTAMPTZ NOT NULL,
    tenant         TEXT NOT NULL,
    sub            TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    model_id       TEXT NOT NULL,
    requests       BIGINT NOT NULL,
    cached         BIGINT NOT NULL,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    total_tokens   BIGINT NOT NULL,
    cost_micro_usd BIGINT NOT NULL,
    PRIMARY KEY (hour, tenant, sub, issuer, key_id, model_id)
);
CREATE INDEX usage_hourly_sub_hour_idx ON usage_hourly (sub, hour);
CREATE INDEX usage_hourly_tenant_hour_idx ON usage_hourly (tenant, hour);

-- Move the records of version 1 across, with their rollups.
SELECT gatehouse_ensure_partition(d::date)
FROM (SELECT DISTINCT (finished_at AT TIME ZONE 'UTC')::date AS d FROM usage_records_v1) days;
INSERT INTO usage_records (request_id, sub, issuer, tenant, channel_id, key_id, model_id, provider,
    conversation_id, input_tokens, output_tokens, total_tokens, cached, estimated, status, started_at, finished_at)
SELECT request_id, sub, issuer, tenant, channel_id, key_id, model_id, provider,
    conversation_id, input_tokens, output_tokens, total_tokens, cached, estimated, status, started_at, finished_at
FROM usage_records_v1;
INSERT INTO usage_hourly
SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant, sub, issuer, key_id, model_id,
    count(*), count(*) FILTER (WHERE cached), sum(input_tokens), sum(output_tokens), sum(total_tokens), sum(cost_micro_usd)
FROM usage_records GROUP BY 1, 2, 3, 4, 5, 6;
DROP TABLE usage_records_v1;
