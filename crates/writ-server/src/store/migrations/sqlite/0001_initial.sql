CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    trust_domain TEXT NOT NULL,
    key_generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('x509', 'jwt')),
    public TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    publish_until BIGINT,
    generation BIGINT NOT NULL
);
CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    spiffe_id TEXT NOT NULL UNIQUE,
    attestation TEXT NOT NULL,
    x509_ttl_seconds BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('admin', 'join')),
    secret_hash BLOB NOT NULL,
    function_name TEXT,
    policies TEXT,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('function', 'serial', 'token')),
    value TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);
