-- Sign-in failures and locks, shared by every process on this database and
-- kept across restarts. Rows exist only for real accounts: a flood of
-- made-up usernames adds nothing here.
CREATE TABLE login_failures (
    username     TEXT PRIMARY KEY REFERENCES users(username),
    failures     INTEGER NOT NULL DEFAULT 0, -- counted since window_start
    window_start INTEGER NOT NULL DEFAULT 0, -- unix nanoseconds
    locked_until INTEGER NOT NULL DEFAULT 0  -- unix nanoseconds; 0: never locked
);
