-- Times are BIGINT unix nanoseconds, 0 meaning "unset", exactly as in the
-- SQLite store: nanosecond round-trips and no time-zone conversions.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BYTEA NOT NULL,
    scopes       TEXT[] NOT NULL DEFAULT '{}',
    tier         TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0,
    rotated_to   TEXT NOT NULL DEFAULT '',
    rotated_from TEXT NOT NULL DEFAULT ''
);
CREATE INDEX api_keys_created ON api_keys (created_at, id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
