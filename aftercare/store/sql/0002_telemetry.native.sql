-- Native PostgreSQL: declarative range partitions by day, BRIN on time, rollups kept by us.
CREATE TABLE IF NOT EXISTS telemetry (
    time      timestamptz NOT NULL,
    device_id integer NOT NULL,
    metric_id integer NOT NULL,
    value     double precision
) PARTITION BY RANGE (time);
CREATE UNIQUE INDEX IF NOT EXISTS telemetry_key ON telemetry (device_id, metric_id, time);
CREATE INDEX IF NOT EXISTS telemetry_time_brin ON telemetry USING brin (time);

-- Time ranges written since the last rollup refresh (the native twin of TimescaleDB's
-- invalidation log): one row per batch, cheap, and consumed by telemetry_rollup_refresh().
CREATE TABLE IF NOT EXISTS telemetry_invalidations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lo timestamptz NOT NULL,
    hi timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION telemetry_partition_name(day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'telemetry_p' || to_char(day, 'YYYYMMDD') $$;

CREATE OR REPLACE FUNCTION telemetry_ensure_partitions(lo timestamptz, hi timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    created integer := 0;
BEGIN
    IF hi < lo THEN RAISE EXCEPTION 'hi % before lo %', hi, lo; END IF;
    FOR day IN SELECT generate_series((lo AT TIME ZONE 'UTC')::date,
                                      (hi AT TIME ZONE 'UTC')::date, interval '1 day')::date
    LOOP
        CONTINUE WHEN to_regclass(telemetry_partition_name(day)) IS NOT NULL;
        -- Two workers may race for the same day: serialise creation, then re-check.
        PERFORM pg_advisory_xact_lock(hashtext('telemetry_ensure_partitions'));
        CONTINUE WHEN to_regclass(telemetry_partition_name(day)) IS NOT NULL;
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
            telemetry_partition_name(day),
            (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

-- Called by every writer inside its batch transaction, before COPY.
CREATE OR REPLACE FUNCTION telemetry_prepare_write(lo timestamptz, hi timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM telemetry_ensure_partitions(lo, hi);
    INSERT INTO telemetry_invalidations (lo, hi) VALUES (lo, hi);
END $$;

CREATE OR REPLACE FUNCTION telemetry_drop_partitions_before(cutoff timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'telemetry' AND c.relname ~ '^telemetry_p[0-9]{8}$'
          AND (to_date(substr(c.relname, 12), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
              <= cutoff
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

CREATE TABLE IF NOT EXISTS telemetry_1m (
    bucket    timestamptz NOT NULL,
    device_id integer NOT NULL,
    metric_id integer NOT NULL,
    min       double precision,
    max       double precision,
    mean      double precision,
    last      double precision,
    count     bigint NOT NULL,
    PRIMARY KEY (device_id, metric_id, bucket)
);
CREATE INDEX IF NOT EXISTS telemetry_1m_bucket ON telemetry_1m USING brin (bucket);

CREATE TABLE IF NOT EXISTS telemetry_1h (LIKE telemetry_1m INCLUDING ALL);

-- Recompute every bucket touched by writes since the last refresh. Buckets are recomputed
-- whole from raw rows, so late and duplicate data give the same result as in-order data.
CREATE OR REPLACE FUNCTION telemetry_rollup_refresh() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    lo_1m timestamptz;
    hi_1m timestamptz;
    max_id bigint;
    touched integer := 0;
    rng record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_rollup_refresh'));
    SELECT max(id) INTO max_id FROM telemetry_invalidations;
    IF max_id IS NULL THEN RETURN 0; END IF;
    -- Merge overlapping hour-aligned ranges so each bucket is recomputed once.
    FOR rng IN
        WITH r AS (
            SELECT date_trunc('hour', lo) AS lo, date_trunc('hour', hi) + interval '1 hour' AS hi
            FROM telemetry_invalidations WHERE id <= max_id
        ), o AS (
            SELECT lo, hi, max(hi) OVER (ORDER BY lo ROWS BETWEEN UNBOUNDED PRECEDING
                                         AND 1 PRECEDING) AS prev_hi
            FROM r
        ), g AS (
            SELECT lo, hi, sum(CASE WHEN prev_hi >= lo THEN 0 ELSE 1 END)
                               OVER (ORDER BY lo) AS grp
            FROM o
        )
        SELECT min(lo) AS lo, max(hi) AS hi FROM g GROUP BY grp
    LOOP
        lo_1m := rng.lo; hi_1m := rng.hi;
        DELETE FROM telemetry_1m WHERE bucket >= lo_1m AND bucket < hi_1m;
        INSERT INTO telemetry_1m
        SELECT date_bin('1 minute', time, 'epoch'), device_id, metric_id, min(value),
               max(value), avg(value), (array_agg(value ORDER BY time DESC))[1], count(value)
        FROM telemetry WHERE time >= lo_1m AND time < hi_1m
        GROUP BY 1, 2, 3;
        DELETE FROM telemetry_1h WHERE bucket >= lo_1m AND bucket < hi_1m;
        INSERT INTO telemetry_1h
        SELECT date_bin('1 hour', time, 'epoch'), device_id, metric_id, min(value),
               max(value), avg(value), (array_agg(value ORDER BY time DESC))[1], count(value)
        FROM telemetry WHERE time >= lo_1m AND time < hi_1m
        GROUP BY 1, 2, 3;
        touched := touched + 1;
    END LOOP;
    DELETE FROM telemetry_invalidations WHERE id <= max_id;
    RETURN touched;
END $$;
