-- Schema v2: campaigns, the stock leases nodes take from them, coupons and redemptions.
--
-- Stock accounting, the invariant that keeps several nodes exact:
--   campaigns.allocated = units handed to leases that are not yet released
--                       + units used by released leases
--   a node issues at most `size` coupons under one lease, and each coupon names its lease;
--   releasing a lease gives back size - (coupons carrying it).
-- So issued coupons <= allocated <= total_limit, whatever nodes crash.

CREATE TABLE campaigns (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    slug                text NOT NULL UNIQUE,
    name                text NOT NULL,
    description         text NOT NULL DEFAULT '',
    terms               text NOT NULL DEFAULT '',
    discount            jsonb,
    total_limit         bigint NOT NULL CHECK (total_limit > 0),
    per_consumer_limit  integer NOT NULL CHECK (per_consumer_limit > 0),
    claim_starts_at     timestamptz NOT NULL,
    claim_ends_at       timestamptz,
    use_starts_at       timestamptz,
    use_ends_at         timestamptz,
    valid_for_seconds   bigint,
    uses_per_coupon     integer NOT NULL CHECK (uses_per_coupon > 0),
    win_probability     double precision CHECK (win_probability > 0 AND win_probability <= 1),
    status              text NOT NULL CHECK (status IN ('draft', 'active', 'paused', 'ended')),
    code_length         integer NOT NULL DEFAULT 10,
    code_prefix         text NOT NULL DEFAULT '',
    allocated           bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (allocated >= 0 AND allocated <= total_limit)
);
CREATE INDEX campaigns_tenant ON campaigns (tenant_id, created_at DESC);

-- A block of a campaign's stock held by one node. Live while released_at IS NULL; a node
-- that stops heart-beating is presumed dead and its lease is reaped.
CREATE TABLE campaign_leases (
    id            uuid PRIMARY KEY,
    campaign_id   uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    node_id       uuid NOT NULL,
    size          bigint NOT NULL CHECK (size > 0),
    taken_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    released_at   timestamptz,
    returned      bigint NOT NULL DEFAULT 0   -- units given back on release
);
CREATE INDEX campaign_leases_live ON campaign_leases (heartbeat_at) WHERE released_at IS NULL;
CREATE INDEX campaign_leases_node ON campaign_leases (node_id) WHERE released_at IS NULL;

-- One row per claim attempt that got an answer. Lottery losers are rows with won = false
-- and no code: their attempt counts against the per-consumer limit, but takes no stock.
-- Only campaign_id is a foreign key: each one costs a trigger per inserted row on the
-- flash-sale path, and the campaign's cascade already covers the tenant's.
CREATE TABLE coupons (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    campaign_id   uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    consumer      text NOT NULL,
    seq           integer NOT NULL CHECK (seq > 0),   -- the consumer's nth claim on this campaign
    won           boolean NOT NULL,
    code          text,
    lease_id      uuid,                              -- campaign_leases.id
    claimed_at    timestamptz NOT NULL,
    valid_from    timestamptz NOT NULL,
    expires_at    timestamptz,
    uses_left     integer NOT NULL CHECK (uses_left >= 0),
    secret        bytea NOT NULL,                    -- per-coupon key for rotating codes
    CHECK (won = (code IS NOT NULL))
);
-- The per-consumer limit, enforced by the database: two nodes can never both write the
-- consumer's nth claim.
CREATE UNIQUE INDEX coupons_consumer_seq ON coupons (campaign_id, consumer, seq);
CREATE UNIQUE INDEX coupons_code ON coupons (tenant_id, code) WHERE code IS NOT NULL;
CREATE INDEX coupons_lease ON coupons (lease_id) WHERE lease_id IS NOT NULL;

CREATE TABLE redemptions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    coupon_id    uuid NOT NULL REFERENCES coupons (id) ON DELETE CASCADE,
    redeemed_at  timestamptz NOT NULL DEFAULT now(),
    store        text,
    staff        text,
    undone_at    timestamptz
);
CREATE INDEX redemptions_coupon ON redemptions (coupon_id);
CREATE INDEX redemptions_campaign ON redemptions (campaign_id, redeemed_at);
