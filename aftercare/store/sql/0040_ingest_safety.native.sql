-- Metric ids cannot run out: integer instead of smallint (32,767 names were one hostile
-- device's afternoon). The views that name the column are recreated unchanged.
DROP VIEW IF EXISTS readings_1h;
DROP VIEW IF EXISTS readings_1m;
DROP VIEW IF EXISTS readings;
ALTER TABLE metrics ALTER COLUMN id TYPE integer;
ALTER TABLE telemetry ALTER COLUMN metric_id TYPE integer;
ALTER TABLE telemetry_1m ALTER COLUMN metric_id TYPE integer;
ALTER TABLE telemetry_1h ALTER COLUMN metric_id TYPE integer;
CREATE OR REPLACE VIEW readings AS
SELECT t.time, d.device_key AS device, m.name AS metric, t.value
FROM telemetry t
JOIN devices d ON d.id = t.device_id
JOIN metrics m ON m.id = t.metric_id;

CREATE OR REPLACE VIEW readings_1m AS
SELECT r.bucket, d.device_key AS device, m.name AS metric, r.min, r.max, r.mean, r.last, r.count
FROM telemetry_1m r
JOIN devices d ON d.id = r.device_id
JOIN metrics m ON m.id = r.metric_id;

CREATE OR REPLACE VIEW readings_1h AS
SELECT r.bucket, d.device_key AS device, m.name AS metric, r.min, r.max, r.mean, r.last, r.count
FROM telemetry_1h r
JOIN devices d ON d.id = r.device_id
JOIN metrics m ON m.id = r.metric_id;
