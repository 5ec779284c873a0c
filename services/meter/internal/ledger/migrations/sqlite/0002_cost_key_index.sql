-- Spend in millionths of a USD, and an index for per-key time ranges.
ALTER TABLE usage_records ADD COLUMN cost_micro_usd INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS usage_records_key_finished_at_idx ON usage_records (key_id, finished_at);
