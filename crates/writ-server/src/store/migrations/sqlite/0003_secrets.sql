ALTER TABLE functions ADD COLUMN policies TEXT;
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    tags TEXT NOT NULL,
    resource_policy TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    recovery_until BIGINT
);
CREATE TABLE secret_versions (
    name TEXT NOT NULL,
    version_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    is_binary BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version_id)
);
CREATE TABLE secret_labels (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (name, label)
);
