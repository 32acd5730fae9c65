-- Schema v1: merchants, their users and API keys.
-- Every tenant-owned table carries tenant_id, and deleting a tenant removes all of it.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE merchant_users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          text NOT NULL,
    role           text NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'staff')),
    password_hash  text NOT NULL,          -- Argon2id, PHC string
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX merchant_users_email_per_tenant ON merchant_users (tenant_id, lower(email));

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '',
    prefix        text NOT NULL,           -- shown to merchants, e.g. eck_Ab3dE6gH
    key_hash      bytea NOT NULL UNIQUE,   -- sha256 of the whole key; the key itself is never stored
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
