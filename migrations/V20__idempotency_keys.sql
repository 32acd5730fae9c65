-- Idempotency keys for API POSTs (Stripe's model): the first request with a key is run and
-- its answer kept; a retry with the same key and the same request gets that answer again.
-- Per API key, so two merchants (or two keys) never share a key space. Kept 24 hours.
CREATE TABLE idempotency_keys (
    api_key_id    uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL,          -- sha256 of method, path and request body
    status        smallint,                -- NULL while the first request is still running
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
