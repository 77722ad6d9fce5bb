-- OIDC tokens that have logged in, by the SHA-256 of the token, kept until they expire:
-- each logs in once, so a token seen in transit or in a log cannot be replayed.
CREATE TABLE used_oidc_tokens (
    token_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_oidc_tokens_expiry ON used_oidc_tokens (expires_at);
