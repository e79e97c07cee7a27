-- Accounts, sessions, refresh tokens, lockouts and the audit log.
-- Ids are UUIDs (stored as 16-byte blobs), times are UTC timestamps.

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,          -- lower-cased email: unique case-insensitively
    username TEXT,
    username_key TEXT UNIQUE,
    password_hash TEXT NOT NULL,             -- argon2id PHC string
    roles TEXT NOT NULL DEFAULT '["user"]',  -- JSON array of global role names
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,           -- absolute: refresh_ttl from login
    revoked_at TIMESTAMP,
    ip TEXT,
    user_agent TEXT,
    amr TEXT NOT NULL DEFAULT '["pwd"]'
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,    -- hex SHA-256 of the opaque token
    session_id BLOB NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    rotated_at TIMESTAMP                     -- set when exchanged for a new pair
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE lockouts (
    key TEXT PRIMARY KEY NOT NULL,           -- "account:<uuid>" or "ip:<addr>"
    failures INTEGER NOT NULL,
    window_started_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP
);

CREATE TABLE audit_events (
    id BLOB PRIMARY KEY NOT NULL,            -- UUIDv7: time-ordered, used as the paging cursor
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    user_id BLOB,
    actor_id BLOB,
    ip TEXT,
    user_agent TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user ON audit_events (user_id);
