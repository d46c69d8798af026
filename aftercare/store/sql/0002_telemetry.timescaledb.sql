-- TimescaleDB: a hypertable with compression, retention and continuous aggregates.
CREATE TABLE IF NOT EXISTS telemetry (
    time      timestamptz NOT NULL,
    device_id integer NOT NULL,
    metric_id integer NOT NULL,
    value     double precision
);
SELECT create_hypertable('telemetry', by_range('time', INTERVAL '1 day'), if_not_exists => true);
CREATE UNIQUE INDEX IF NOT EXISTS telemetry_key ON telemetry (device_id, metric_id, time);

ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id, metric_id',
    timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('telemetry', compress_after => INTERVAL '{compress_after_days} days',
                              if_not_exists => true);
SELECT add_retention_policy('telemetry', drop_after => INTERVAL '{retention_days} days',
                            if_not_exists => true);

-- Hypertables need no partition management, and continuous aggregates track their own
-- invalidations: the writer's hook is a no-op here so writers stay backend-agnostic.
CREATE OR REPLACE FUNCTION telemetry_prepare_write(lo timestamptz, hi timestamptz)
RETURNS void LANGUAGE sql AS $$ SELECT $$;

CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, device_id, metric_id,
       min(value) AS min, max(value) AS max, avg(value) AS mean,
       last(value, time) AS last, count(value) AS count
FROM telemetry GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, device_id, metric_id,
       min(value) AS min, max(value) AS max, avg(value) AS mean,
       last(value, time) AS last, count(value) AS count
FROM telemetry GROUP BY 1, 2, 3
WITH NO DATA;

SELECT add_continuous_aggregate_policy('telemetry_1m', start_offset => INTERVAL '3 hours',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute',
    if_not_exists => true);
SELECT add_continuous_aggregate_policy('telemetry_1h', start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes',
    if_not_exists => true);
