CREATE TABLE users (
    username            TEXT PRIMARY KEY,
    role                TEXT NOT NULL,                  -- admin | security | auditor
    scopes              TEXT[] NOT NULL DEFAULT '{}',
    password_hash       TEXT NOT NULL,                  -- PHC-encoded argon2id
    password_changed_at BIGINT NOT NULL,                -- unix nanoseconds
    password_expired    BOOLEAN NOT NULL DEFAULT FALSE, -- must be changed at next login
    password_history    TEXT[] NOT NULL DEFAULT '{}',   -- previous hashes, newest first
    totp_secret         BYTEA,                          -- sealed; NULL: not enrolled
    totp_enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step      BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    disabled_at         BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id_hash      BYTEA PRIMARY KEY,                     -- SHA-256 of the session id
    username     TEXT NOT NULL REFERENCES users (username),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,                       -- absolute expiry
    restricted   TEXT NOT NULL DEFAULT ''               -- '' or what the session may only do
);
CREATE INDEX sessions_username ON sessions (username);

CREATE TABLE pats (
    id         TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users (username),
    name       TEXT NOT NULL,
    hash       BYTEA NOT NULL,
    scopes     TEXT[] NOT NULL DEFAULT '{}',
    role       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX pats_username ON pats (username, created_at, id);
CREATE INDEX pats_created ON pats (created_at, id);
