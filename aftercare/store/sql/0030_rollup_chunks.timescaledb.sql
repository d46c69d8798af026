-- TimescaleDB keeps its own continuous aggregates (refreshed per chunk by the extension), so
-- only the `devices` autovacuum setting of the native twin applies here: every ingest batch
-- updates last_seen, so vacuum after ~2 % churn instead of 20 %.
ALTER TABLE devices SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200,
                         autovacuum_analyze_scale_factor = 0.05);
