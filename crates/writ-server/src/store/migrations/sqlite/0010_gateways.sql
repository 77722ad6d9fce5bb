-- Gateways' own identities (spiffe://TD/writ/gateway/NAME): how each logs in, and the DNS
-- names and IP addresses (JSON arrays) its X.509-SVID, its TLS certificate, carries.
CREATE TABLE gateways (
    name TEXT PRIMARY KEY,
    spiffe_id TEXT NOT NULL,
    attestation TEXT NOT NULL,
    dns_names TEXT NOT NULL,
    ip_addresses TEXT NOT NULL,
    x509_ttl_seconds BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
-- A join token made for a gateway names it here (and no function).
ALTER TABLE tokens ADD COLUMN gateway_name TEXT;
