-- When each user last completed a sign-in (issue 18): password, and the
-- second factor where one is enrolled or required. Unix nanoseconds, 0
-- never; written only forward (RecordSignIn), so replicas recording out of
-- order never move it back, and UpdateUser never writes it.
ALTER TABLE users ADD COLUMN last_sign_in_at BIGINT NOT NULL DEFAULT 0;
