-- Rejects are kept within a size cap (first 64 KiB, with the full size and SHA-256), and
-- once per spooled message (source_key), so a replayed spool never keeps one twice.
ALTER TABLE ingest_rejects ADD COLUMN IF NOT EXISTS payload_size integer;
ALTER TABLE ingest_rejects ADD COLUMN IF NOT EXISTS payload_sha256 bytea;
ALTER TABLE ingest_rejects ADD COLUMN IF NOT EXISTS source_key text;
CREATE UNIQUE INDEX IF NOT EXISTS ingest_rejects_source_key ON ingest_rejects (source_key);
COMMENT ON COLUMN ingest_rejects.payload IS
    'The payload as received, verbatim up to 64 KiB (payload_size and payload_sha256 describe the whole)';
