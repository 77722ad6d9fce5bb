-- The audit chain stored one appended batch (a segment) per row instead of one event per
-- row: a gateway reports thousands of events a second, and a row (with its index entries)
-- per event was most of what storing them cost. Each event's hash is still stored, so
-- `writ audit verify` points at the first altered event as before.
CREATE TABLE audit_segments (
    first_seq INTEGER PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    min_time_ms BIGINT NOT NULL,
    max_time_ms BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hashes TEXT NOT NULL,
    events TEXT NOT NULL
);
CREATE INDEX audit_segments_last ON audit_segments (last_seq);
CREATE TABLE audit_segment_actors (
    actor TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    PRIMARY KEY (actor, first_seq)
) WITHOUT ROWID;
INSERT INTO audit_segments (first_seq, last_seq, min_time_ms, max_time_ms, prev_hash, hashes, events)
    SELECT seq, seq, time_ms, time_ms, prev_hash, hash, event FROM audit_events;
INSERT INTO audit_segment_actors (actor, first_seq) SELECT actor, seq FROM audit_events;
DROP TABLE audit_events;
