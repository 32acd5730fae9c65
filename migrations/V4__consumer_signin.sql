-- Schema v4: consumers who sign in with an OpenID Connect provider (LINE, Google, Apple, …).

-- A signed-in consumer is the provider's stable subject and nothing else: no e-mail, no name.
-- The engine's consumer reference is 'oidc:<provider>:<subject>'.
CREATE TABLE consumers (
    id            uuid PRIMARY KEY,
    provider      text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, subject)
);

-- A sign-in in progress, kept here rather than in a cookie: Apple's form_post callback is a
-- cross-site POST that carries no SameSite=Lax cookie. Single use, 10 minutes.
CREATE TABLE signin_requests (
    state_hash       bytea PRIMARY KEY,       -- sha256 of the state sent to the provider
    provider         text NOT NULL,
    nonce            text NOT NULL,
    pkce_verifier    text NOT NULL,
    return_to        text NOT NULL CHECK (return_to LIKE '/%' AND return_to NOT LIKE '//%'),
    browser_hash     bytea NOT NULL,          -- sha256 of the browser's sign-in cookie
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,             -- the provider called back (only once)
    consumer_id      uuid REFERENCES consumers (id) ON DELETE CASCADE,
    completion_hash  bytea UNIQUE,            -- sha256 of the one-time /auth/complete token
    completed_at     timestamptz
);
CREATE INDEX signin_requests_expires ON signin_requests (expires_at);
