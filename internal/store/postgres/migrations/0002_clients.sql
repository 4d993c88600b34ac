CREATE TABLE clients (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    secret_hash       BYTEA NOT NULL,
    scopes            TEXT[] NOT NULL DEFAULT '{}',
    tier              TEXT NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,          -- unix nanoseconds
    secret_rotated_at BIGINT NOT NULL DEFAULT 0,
    revoked_at        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX clients_created ON clients (created_at, id);
