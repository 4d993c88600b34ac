CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL,
    scopes       TEXT NOT NULL,          -- space-separated
    tier         TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,       -- unix nanoseconds
    expires_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0,
    rotated_to   TEXT NOT NULL DEFAULT '',
    rotated_from TEXT NOT NULL DEFAULT ''
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
