-- Rollup refresh in chunks, rollups stored clustered by device, and a tighter autovacuum on
-- `devices`.
--
-- telemetry_rollup_refresh_range(lo, hi) recomputes the 1-minute and 1-hour buckets of one
-- hour-aligned slice. maintain() calls it once per slice (a day by default), each slice in its
-- own transaction, so a 30-day backfill is thirty short transactions with visible progress
-- instead of one statement over the whole range. The output is inserted ordered by
-- (device_id, metric_id, bucket): one asset's month then sits on about one heap page per slice
-- rather than one page per row, and the primary-key inserts sweep the index once in order
-- instead of landing at random (which is what made the single-statement refresh slow once the
-- rollups outgrew shared_buffers).
CREATE OR REPLACE FUNCTION telemetry_rollup_refresh_range(lo timestamptz, hi timestamptz)
RETURNS bigint
LANGUAGE plpgsql
-- Enough memory for a one-day slice's sort to stay in memory on a typical fleet.
SET work_mem = '64MB'
AS $$
DECLARE
    n1m bigint;
    n1h bigint;
BEGIN
    IF lo IS NULL OR hi IS NULL OR hi <= lo THEN
        RAISE EXCEPTION 'telemetry_rollup_refresh_range: need lo < hi, got [%, %)', lo, hi;
    END IF;
    IF lo <> date_trunc('hour', lo) OR hi <> date_trunc('hour', hi) THEN
        RAISE EXCEPTION 'telemetry_rollup_refresh_range: [%, %) is not hour-aligned', lo, hi;
    END IF;
    -- Two refreshers on the same slice would each delete and insert: serialise them.
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_rollup_refresh'));
    DELETE FROM telemetry_1m WHERE bucket >= lo AND bucket < hi;
    INSERT INTO telemetry_1m (bucket, device_id, metric_id, min, max, mean, last, count)
    SELECT date_bin('1 minute', time, 'epoch') AS b, device_id, metric_id, min(value),
           max(value), avg(value), (array_agg(value ORDER BY time DESC))[1], count(value)
    FROM telemetry WHERE time >= lo AND time < hi
    GROUP BY device_id, metric_id, b
    ORDER BY device_id, metric_id, b;
    GET DIAGNOSTICS n1m = ROW_COUNT;
    DELETE FROM telemetry_1h WHERE bucket >= lo AND bucket < hi;
    INSERT INTO telemetry_1h (bucket, device_id, metric_id, min, max, mean, last, count)
    SELECT date_bin('1 hour', time, 'epoch') AS b, device_id, metric_id, min(value),
           max(value), avg(value), (array_agg(value ORDER BY time DESC))[1], count(value)
    FROM telemetry WHERE time >= lo AND time < hi
    GROUP BY device_id, metric_id, b
    ORDER BY device_id, metric_id, b;
    GET DIAGNOSTICS n1h = ROW_COUNT;
    RETURN n1m + n1h;
END $$;

-- The pending invalidations, merged into disjoint hour-aligned ranges, with the ids they
-- came from. The caller deletes exactly those ids once every range is refreshed: an id that
-- commits later (identity values are handed out before commit) stays for the next run.
CREATE OR REPLACE FUNCTION telemetry_rollup_pending(OUT ids bigint[], OUT lo timestamptz,
                                                    OUT hi timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT id, date_trunc('hour', lo) AS lo, date_trunc('hour', hi) + interval '1 hour' AS hi
        FROM telemetry_invalidations
    ), o AS (
        SELECT id, lo, hi, max(hi) OVER (ORDER BY lo, id ROWS BETWEEN UNBOUNDED PRECEDING
                                         AND 1 PRECEDING) AS prev_hi
        FROM r
    ), g AS (
        SELECT id, lo, hi, sum(CASE WHEN prev_hi >= lo THEN 0 ELSE 1 END)
                               OVER (ORDER BY lo, id) AS grp
        FROM o
    )
    SELECT array_agg(id), min(lo), max(hi) FROM g GROUP BY grp ORDER BY min(lo)
$$;

-- The one-call form, kept for callers that refresh everything at once (one transaction).
CREATE OR REPLACE FUNCTION telemetry_rollup_refresh() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    touched integer := 0;
    rng record;
    s timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_rollup_refresh'));
    FOR rng IN SELECT * FROM telemetry_rollup_pending() LOOP
        s := rng.lo;
        WHILE s < rng.hi LOOP
            PERFORM telemetry_rollup_refresh_range(s, least(s + interval '1 day', rng.hi));
            s := s + interval '1 day';
        END LOOP;
        DELETE FROM telemetry_invalidations WHERE id = ANY(rng.ids);
        touched := touched + 1;
    END LOOP;
    RETURN touched;
END $$;

-- `devices` is small but every ingest batch updates last_seen: vacuum it after ~2 % churn
-- instead of 20 %, so fleet counts scan tens of pages, not thousands.
ALTER TABLE devices SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200,
                         autovacuum_analyze_scale_factor = 0.05);

-- Two writers creating the same day's partition: the advisory lock serialises them, but the
-- second one's catalog lookup can still miss the table the first just committed (an advisory
-- lock does not refresh the catalog cache), so its CREATE fails. Treat "already exists" as
-- the success it is.
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
        PERFORM pg_advisory_xact_lock(hashtext('telemetry_ensure_partitions'));
        CONTINUE WHEN to_regclass(telemetry_partition_name(day)) IS NOT NULL;
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
                telemetry_partition_name(day),
                (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        EXCEPTION WHEN duplicate_table THEN
            NULL;  -- created by a concurrent writer since our lookup
        END;
    END LOOP;
    RETURN created;
END $$;
