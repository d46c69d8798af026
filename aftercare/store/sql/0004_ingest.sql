-- Device status transitions (from retained status messages and wills) and waveform bursts.
CREATE TABLE IF NOT EXISTS device_status_log (
    device_id integer NOT NULL REFERENCES devices (id),
    time      timestamptz NOT NULL,
    state     text NOT NULL CHECK (state IN ('online', 'offline')),
    PRIMARY KEY (device_id, time, state)
);

CREATE TABLE IF NOT EXISTS waveforms (
    device_id      integer NOT NULL REFERENCES devices (id),
    time           timestamptz NOT NULL,
    channel        text NOT NULL,
    sample_rate_hz double precision NOT NULL CHECK (sample_rate_hz > 0),
    samples        bytea NOT NULL,  -- float32 little-endian, as the device sent them
    PRIMARY KEY (device_id, channel, time)
);
CREATE INDEX IF NOT EXISTS waveforms_time ON waveforms USING brin (time);
COMMENT ON TABLE waveforms IS 'Vibration bursts for spectral analysis (anomaly/ reads them).';
