-- The analysts' contract: stable whatever the physical tables become.
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
