-- A segment's events stored compressed (`codec` 'lz4': see writ_audit::packed) and its
-- hashes as bytes, 32 per event: a gateway's batch of events compresses about 17 times,
-- and the hex of the hashes was twice their size, so the store writes, copies and
-- checkpoints a tenth as much per event. Segments stored before keep their text
-- (`codec` 'none'), byte for byte; hashes that are not hex (altered) are kept as they are,
-- for `writ audit verify` to find.
CREATE TABLE audit_segments_packed (
    first_seq INTEGER PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    min_time_ms BIGINT NOT NULL,
    max_time_ms BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hashes BLOB NOT NULL,
    codec TEXT NOT NULL,
    events BLOB NOT NULL
);
INSERT INTO audit_segments_packed (first_seq, last_seq, min_time_ms, max_time_ms, prev_hash, hashes, codec, events)
    SELECT first_seq, last_seq, min_time_ms, max_time_ms, prev_hash,
           COALESCE(unhex(hashes), CAST(hashes AS BLOB)), 'none', CAST(events AS BLOB)
    FROM audit_segments;
DROP TABLE audit_segments;
ALTER TABLE audit_segments_packed RENAME TO audit_segments;
CREATE INDEX audit_segments_last ON audit_segments (last_seq);
