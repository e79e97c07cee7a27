-- Password reset and email verification tokens, TOTP, account deletion.

-- TOTP secrets are sealed (crypto::seal), never stored in the clear.
ALTER TABLE users ADD COLUMN totp_secret TEXT;               -- set once TOTP is enabled
ALTER TABLE users ADD COLUMN totp_pending TEXT;              -- between setup and enable
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;          -- last accepted time step: no replay
ALTER TABLE users ADD COLUMN deletion_scheduled_for TIMESTAMPTZ;
CREATE INDEX users_deletion ON users (deletion_scheduled_for);

CREATE TABLE recovery_codes (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,                 -- hex SHA-256 of the normalized code
    used_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY,    -- hex SHA-256 of the mailed token
    purpose TEXT NOT NULL,                   -- 'reset_password' | 'verify_email'
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email_key TEXT NOT NULL,                 -- the address it was sent to (lower-cased)
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ                        -- used, or superseded by a newer token
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

-- Purged accounts, kept for as long as their access tokens could live: the
-- gateway refuses every token of these ids, also after a restart.
CREATE TABLE deleted_users (
    id UUID PRIMARY KEY,
    deleted_at TIMESTAMPTZ NOT NULL
);
