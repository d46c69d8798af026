-- Anomaly worker: durable watermark + detector checkpoint, and the alert outbox.
-- The same on both backends; safe to apply again.

-- One row per worker name. `watermark` is the event-time horizon up to which telemetry has been
-- analysed; `state` is the detector bank checkpoint (numpy .npz, no pickle). Both are written in
-- the transaction that also queues the block's alerts, so a restart resumes exactly there.
CREATE TABLE IF NOT EXISTS anomaly_checkpoints (
    worker     text PRIMARY KEY,
    watermark  timestamptz NOT NULL,
    state      bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Alert events waiting to be (or already) published. Unique per worker and (alert_id, revision):
-- a block processed twice cannot queue an event twice; publishing marks `published_at`.
CREATE TABLE IF NOT EXISTS anomaly_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker       text NOT NULL,
    alert_id     text NOT NULL,
    revision     integer NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    UNIQUE (worker, alert_id, revision)
);
CREATE INDEX IF NOT EXISTS anomaly_outbox_pending ON anomaly_outbox (id)
    WHERE published_at IS NULL;
