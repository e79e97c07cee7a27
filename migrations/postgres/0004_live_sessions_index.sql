-- A user's live sessions without walking every session they ever had.
-- Revoked sessions are kept (GET /auth/sessions and the audit trail refer
-- to them), so an account that logs in often piles up revoked rows, and the
-- login's max_sessions_per_user check, GET /auth/sessions and "revoke all"
-- read only the live ones.
CREATE INDEX sessions_user_live ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
