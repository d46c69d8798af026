-- The shaft speed a device measured while it recorded a vibration burst (optional in the
-- payload). The anomaly worker places the bearing defect frequencies with it; without it, it
-- falls back to the asset's speed channel, then to an estimate from the burst itself.
-- The same on both backends; safe to apply again.
ALTER TABLE waveforms ADD COLUMN IF NOT EXISTS shaft_rpm double precision
    CHECK (shaft_rpm IS NULL OR shaft_rpm > 0);
