-- Ground truth of simulated fleets: every fault the simulator injected, so detection can be
-- scored against it. Written by simulators.labels; the same on both backends.
CREATE TABLE IF NOT EXISTS fault_labels (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,
    scenario    text NOT NULL,
    device      text NOT NULL,
    fault       text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('equipment', 'device')),
    metric      text,
    onset       timestamptz NOT NULL,
    failure_at  timestamptz,
    end_at      timestamptz,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (failure_at IS NULL OR failure_at >= onset),
    CHECK (end_at IS NULL OR end_at >= onset),
    UNIQUE (run_id, device, fault, onset)
);
COMMENT ON TABLE fault_labels IS 'Faults injected by the fleet simulator (ground truth for scoring detection).';
CREATE INDEX IF NOT EXISTS fault_labels_device_onset ON fault_labels (device, onset);
