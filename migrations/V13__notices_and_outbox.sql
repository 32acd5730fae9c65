-- Schema v13: maintenance and incident notices, and the durable e-mail outbox.
--
-- A maintenance notice is a window (starts_at .. ends_at) announced from `announce_from`;
-- during the window consumer and API requests get 503 with Retry-After. An incident runs
-- from starts_at until resolved (ends_at). `notice_updates` is the incident history the
-- status page shows.
--
-- Mail is written to `mail_outbox` in the same transaction as the notice, so a notice is
-- never posted without its mail, and a mail server that is down only delays it: the
-- sender retries with backoff until it is accepted. Recipients are merchants' owners and
-- admins, so each row names its tenant (and goes with it on purge).

CREATE TABLE notices (
    id             uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('maintenance', 'incident')),
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body           text NOT NULL DEFAULT '',
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz,
    announce_from  timestamptz NOT NULL,
    emergency      boolean NOT NULL DEFAULT false,
    status         text NOT NULL CHECK (status IN
                     ('scheduled', 'cancelled', 'investigating', 'identified', 'monitoring', 'resolved')),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'incident' OR (ends_at IS NOT NULL AND ends_at > starts_at))
);
CREATE INDEX notices_time ON notices (starts_at DESC);

CREATE TABLE notice_updates (
    id         bigserial PRIMARY KEY,
    notice_id  uuid NOT NULL REFERENCES notices (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    status     text NOT NULL,
    body       text NOT NULL DEFAULT ''
);
CREATE INDEX notice_updates_notice ON notice_updates (notice_id, at);

CREATE TABLE mail_outbox (
    id               bigserial PRIMARY KEY,
    tenant_id        uuid REFERENCES tenants (id) ON DELETE CASCADE,
    notice_id        uuid REFERENCES notices (id) ON DELETE CASCADE,
    kind             text NOT NULL,           -- announce, reminder, incident, resolved, cancelled
    recipient        text NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    send_after       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notice_id, kind, recipient)
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
