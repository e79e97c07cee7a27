-- Ended sessions are deleted once no token of theirs can still verify (the
-- purge pass, every accounts.purge_interval), and a restart reloads only
-- the recently revoked ones into the in-memory revocation set. These find
-- both without a full scan, however many sessions there are.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_expires_at ON sessions (expires_at);
