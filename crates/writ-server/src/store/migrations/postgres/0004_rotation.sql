ALTER TABLE secrets ADD COLUMN rotation TEXT;
ALTER TABLE secrets ADD COLUMN next_rotation_at BIGINT;
ALTER TABLE secrets ADD COLUMN rotating_since BIGINT;
ALTER TABLE secrets ADD COLUMN last_rotation TEXT;
