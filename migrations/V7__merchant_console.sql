-- Schema v7: the merchant console. Signed-in merchant users with server-side sessions,
-- invitations, optional TOTP, per-account throttling; stores; an audit trail of admin
-- actions; tenant settings for check codes, MFA and an IP allow-list; single-use tokens
-- for the consumer's "use" confirmation.

ALTER TABLE merchant_users
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
    ADD COLUMN password_changed_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN totp_secret          bytea,               -- set while enrolling or enrolled
    ADD COLUMN totp_enabled         boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_last_step       bigint,              -- a TOTP code works once
    ADD COLUMN failed_sign_ins      integer NOT NULL DEFAULT 0,
    ADD COLUMN sign_in_blocked_until timestamptz,        -- growing delays after failures
    ADD COLUMN last_sign_in_at      timestamptz;
-- Sign-in is by e-mail alone, so find users by it quickly (unique per tenant already).
CREATE INDEX merchant_users_email ON merchant_users (lower(email));

-- Owners created before this version sign in with the printed password and must change it.
UPDATE merchant_users SET must_change_password = true WHERE role = 'owner';

-- Server-side sessions: the cookie holds a random id; only its SHA-256 is stored, so a
-- database read does not hand out live sessions.
CREATE TABLE merchant_sessions (
    id_hash       bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES merchant_users (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    csrf          text NOT NULL,
    mfa_pending   boolean NOT NULL DEFAULT false,  -- password given, TOTP not yet
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,            -- absolute timeout
    ip            text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX merchant_sessions_user ON merchant_sessions (user_id);
CREATE INDEX merchant_sessions_expiry ON merchant_sessions (expires_at);

CREATE TABLE merchant_invites (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'staff')),
    token_hash  bytea NOT NULL UNIQUE,
    created_by  uuid REFERENCES merchant_users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX merchant_invites_tenant ON merchant_invites (tenant_id, created_at DESC);

-- Where coupons are used. The API's free-text "store" maps onto a store by code or name.
CREATE TABLE stores (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    code        text NOT NULL CHECK (code ~ '^[A-Z0-9-]{1,16}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);
ALTER TABLE redemptions
    ADD COLUMN store_id uuid REFERENCES stores (id) ON DELETE SET NULL,
    ADD COLUMN staff_user_id uuid REFERENCES merchant_users (id) ON DELETE SET NULL;
CREATE INDEX redemptions_tenant_time ON redemptions (tenant_id, redeemed_at);

-- Every admin action: who, what, to what, from where, when. (Made tamper-evident by the
-- operations work; here it is append-only by convention.)
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    actor_id    uuid,
    actor       text NOT NULL,          -- e-mail or "cli" / "api-key eck_…" at the time
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    ip          text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, at);

ALTER TABLE tenants
    ADD COLUMN require_check_code boolean NOT NULL DEFAULT false,
    ADD COLUMN require_mfa        boolean NOT NULL DEFAULT false,
    -- CIDRs allowed to reach the console and the API; empty allows everyone.
    ADD COLUMN ip_allowlist       text[] NOT NULL DEFAULT '{}';

-- The consumer's "use" confirmation carries one of these: a double submit cannot spend
-- two uses of a multi-use coupon.
CREATE TABLE coupon_use_tokens (
    token_hash  bytea PRIMARY KEY,
    coupon_id   uuid NOT NULL REFERENCES coupons (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX coupon_use_tokens_expiry ON coupon_use_tokens (expires_at);
