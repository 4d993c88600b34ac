-- Client and token lists are read a page at a time in (created_at, id)
-- order, a user's tokens by (username, created_at, id): the indexes the
-- PostgreSQL store has had from the start.
CREATE INDEX clients_created ON clients (created_at, id);
CREATE INDEX pats_created ON pats (created_at, id);
DROP INDEX pats_username;
CREATE INDEX pats_username ON pats (username, created_at, id);
