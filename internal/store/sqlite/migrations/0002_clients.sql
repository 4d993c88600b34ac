CREATE TABLE clients (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    secret_hash       BLOB NOT NULL,
    scopes            TEXT NOT NULL,     -- space-separated
    tier              TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,  -- unix nanoseconds
    secret_rotated_at INTEGER NOT NULL DEFAULT 0,
    revoked_at        INTEGER NOT NULL DEFAULT 0
);
