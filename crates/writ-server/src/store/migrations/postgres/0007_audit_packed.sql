-- A segment's events stored compressed (`codec` 'lz4': see writ_audit::packed) and its
-- hashes as bytes, 32 per event: a gateway's batch of events compresses about 17 times,
-- and the hex of the hashes was twice their size, so the store writes, copies and
-- checkpoints a tenth as much per event. Segments stored before keep their text
-- (`codec` 'none'), byte for byte; hashes that are not hex (altered) are kept as they are,
-- for `writ audit verify` to find.
ALTER TABLE audit_segments
    ALTER COLUMN hashes TYPE BYTEA USING
        CASE WHEN hashes ~ '^([0-9a-fA-F]{2})*$' THEN decode(hashes, 'hex')
             ELSE convert_to(hashes, 'UTF8') END,
    ALTER COLUMN events TYPE BYTEA USING convert_to(events, 'UTF8'),
    ADD COLUMN codec TEXT NOT NULL DEFAULT 'none';
ALTER TABLE audit_segments ALTER COLUMN codec DROP DEFAULT;
