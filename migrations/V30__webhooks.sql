-- Schema v30: merchants' webhook endpoints and their durable outbox.
--
-- A delivery row is written in the same transaction as the change it reports (a claim
-- batch, a redemption, its undo, a status change, the release of a campaign's last
-- lease), and only for endpoints subscribed to that event: a crash after COMMIT loses
-- nothing, and a tenant without endpoints pays one index probe. The sender claims due rows
-- with FOR UPDATE SKIP LOCKED and a lease (next_attempt_at moved ahead), so nodes never
-- send one row at the same time, and retries with exponential backoff for 24 hours.

CREATE TABLE webhook_endpoints (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url          text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    events       text[] NOT NULL CHECK (cardinality(events) > 0),
    description  text NOT NULL DEFAULT '',
    -- The signing key (Standard Webhooks `whsec_…`): needed in clear to sign, shown once.
    secret       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    tenant_id        uuid NOT NULL,
    event_type       text NOT NULL,
    data             jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    last_status      integer,           -- the endpoint's HTTP status, when it answered
    last_error       text,
    delivered_at     timestamptz,
    failed_at        timestamptz         -- gave up: still failing 24 hours after the event
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

-- Every attempt, for the per-endpoint delivery log.
CREATE TABLE webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    status       integer,
    error        text,
    duration_ms  integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, at);
