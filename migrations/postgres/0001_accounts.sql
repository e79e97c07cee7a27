-- Accounts, sessions, refresh tokens, lockouts and the audit log.

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,          -- lower-cased email: unique case-insensitively
    username TEXT,
    username_key TEXT UNIQUE,
    password_hash TEXT NOT NULL,             -- argon2id PHC string
    roles TEXT NOT NULL DEFAULT '["user"]',  -- JSON array of global role names
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,         -- absolute: refresh_ttl from login
    revoked_at TIMESTAMPTZ,
    ip TEXT,
    user_agent TEXT,
    amr TEXT NOT NULL DEFAULT '["pwd"]'
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,             -- hex SHA-256 of the opaque token
    session_id UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ                   -- set when exchanged for a new pair
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE lockouts (
    key TEXT PRIMARY KEY,                    -- "account:<uuid>" or "ip:<addr>"
    failures INTEGER NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);

CREATE TABLE audit_events (
    id UUID PRIMARY KEY,                     -- UUIDv7: time-ordered, used as the paging cursor
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    user_id UUID,
    actor_id UUID,
    ip TEXT,
    user_agent TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user ON audit_events (user_id);
