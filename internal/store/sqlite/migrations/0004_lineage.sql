-- Lineage and use of credentials (issue 13): who created each credential
-- (created_by: the direct creator, "kind:id"; created_by_root: the person
-- or bootstrap token at the end of the chain), when it was last used
-- (unix nanoseconds, 0 never; written in batches at most once a minute),
-- and an expiry for clients (0 never), so a client minted by a
-- short-lived token cannot outlive it.
ALTER TABLE api_keys ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN created_by_root TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN created_by_root TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pats ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE pats ADD COLUMN created_by_root TEXT NOT NULL DEFAULT '';
ALTER TABLE pats ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN created_by_root TEXT NOT NULL DEFAULT '';
