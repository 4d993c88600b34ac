CREATE TABLE users (
    username            TEXT PRIMARY KEY,
    role                TEXT NOT NULL,          -- admin | security | auditor
    scopes              TEXT NOT NULL DEFAULT '',
    password_hash       TEXT NOT NULL,
    password_changed_at INTEGER NOT NULL,       -- unix nanoseconds
    password_expired    INTEGER NOT NULL DEFAULT 0, -- 1: must be changed at next login
    password_history    TEXT NOT NULL DEFAULT '[]', -- JSON array of previous hashes
    totp_secret         BLOB,                   -- AES-GCM sealed under the server key
    totp_enabled        INTEGER NOT NULL DEFAULT 0,
    totp_last_step      INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    disabled_at         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,              -- SHA-256 of the session id
    username     TEXT NOT NULL REFERENCES users(username),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,              -- absolute expiry
    restricted   TEXT NOT NULL DEFAULT ''       -- '' or what the session may only do
);
CREATE INDEX sessions_username ON sessions(username);

CREATE TABLE pats (
    id         TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users(username),
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '',
    role       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pats_username ON pats(username);
