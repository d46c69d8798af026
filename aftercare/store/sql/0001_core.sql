-- Devices, metrics, rejects: the same on both backends.
CREATE TABLE IF NOT EXISTS devices (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_key       text NOT NULL UNIQUE CHECK (device_key ~ '^[A-Za-z0-9_.-]{1,64}$'),
    first_seen       timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz,
    last_reading_at  timestamptz,
    state            text CHECK (state IN ('online', 'offline')),
    state_changed_at timestamptz
);
COMMENT ON TABLE devices IS 'Every device id ever seen on the broker; the CRM claims them for assets.';

CREATE TABLE IF NOT EXISTS metrics (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$')
);

CREATE TABLE IF NOT EXISTS ingest_rejects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    detail      text
);
CREATE INDEX IF NOT EXISTS ingest_rejects_received_at ON ingest_rejects (received_at);
CREATE INDEX IF NOT EXISTS ingest_rejects_reason ON ingest_rejects (reason);
