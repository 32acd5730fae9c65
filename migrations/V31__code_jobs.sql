-- Schema v31: bulk code jobs. Up to 10,000 codes are made while the request waits; more
-- are made by a job. A job is made in ONE transaction that also locks its row (FOR UPDATE
-- SKIP LOCKED: one node runs it) and marks it done, so a node killed mid-way leaves it
-- pending for the next try, never half made.
--
-- Bulk and imported coupons are ordinary coupons: they carry a lease that is written
-- already released with nothing returned, so `campaigns.allocated` counts them exactly
-- like claimed ones (see V2's invariant), and their consumer is `bulk:<batch id>` with
-- seq 1, 2, 3 ….
CREATE TABLE code_jobs (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    count        integer NOT NULL CHECK (count > 0),
    pattern      text NOT NULL,
    charset      text NOT NULL,
    prefix       text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    error_code   text,
    error        text,
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX code_jobs_pending ON code_jobs (created_at) WHERE status = 'pending';
CREATE INDEX code_jobs_tenant ON code_jobs (tenant_id, created_at DESC);
