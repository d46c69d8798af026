-- Detection scaled out (anomaly/leases.py): devices split into partitions (device_id % partitions),
-- each partition leased to one `aftercare detect` process at a time. The same on both backends;
-- safe to apply again.

-- One row per partition of a partition count. `epoch` grows on every claim: it is the fencing
-- token the holder's commits are checked against. Times are the database's clock.
CREATE TABLE IF NOT EXISTS detect_leases (
    partitions integer NOT NULL CHECK (partitions >= 1),
    part       integer NOT NULL,
    holder     text,
    epoch      bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (partitions, part),
    CHECK (part >= 0 AND part < partitions)
);

-- The processes sharing the partitions, by their last heartbeat: the fair share of each is
-- ceil(partitions / live members), so a new member makes the others hand partitions over.
CREATE TABLE IF NOT EXISTS detect_members (
    member     text PRIMARY KEY,
    partitions integer NOT NULL,
    seen_at    timestamptz NOT NULL
);

-- Fencing: a partition's connection says which lease it works under
-- (aftercare.detect_lease = 'partitions:part:epoch:holder'). A checkpoint written under a lease
-- that is no longer current (taken over: another holder or a newer epoch) is refused, so the step
-- that would have written it rolls back with its alert events. The lease row is locked FOR SHARE
-- until the commit, so a takeover waits for a step in flight, never the other way round.
-- Connections without the setting (a single `aftercare detect`) are not affected.
CREATE OR REPLACE FUNCTION detect_lease_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lease text := current_setting('aftercare.detect_lease', true);
    f text[];
BEGIN
    IF lease IS NULL OR lease = '' THEN
        RETURN NEW;
    END IF;
    f := regexp_match(lease, '^(\d+):(\d+):(\d+):(.+)$');
    IF f IS NULL THEN
        RAISE EXCEPTION 'aftercare.detect_lease is malformed: %', lease USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM detect_leases
     WHERE partitions = f[1]::integer AND part = f[2]::integer AND epoch = f[3]::bigint
       AND holder = f[4]
       FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'detect lease lost: %', lease USING ERRCODE = 'AL001';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS anomaly_checkpoints_lease_fence ON anomaly_checkpoints;
CREATE TRIGGER anomaly_checkpoints_lease_fence BEFORE INSERT OR UPDATE ON anomaly_checkpoints
    FOR EACH ROW EXECUTE FUNCTION detect_lease_fence();
