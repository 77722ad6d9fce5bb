-- Shared API-key quotas: per key and period, how many admissions the server has leased
-- to gateways. A lease adds to `granted` only by compare-and-set on the value read, so
-- servers sharing the database never grant past the limit together. Rows of periods
-- that ended a day ago are deleted as new periods begin.
CREATE TABLE api_key_quotas (
    key_id TEXT NOT NULL,
    period_seconds BIGINT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    granted BIGINT NOT NULL,
    PRIMARY KEY (key_id, period_seconds, period_start)
);
CREATE INDEX api_key_quotas_end ON api_key_quotas (period_end);
