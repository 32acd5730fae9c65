-- Schema v35: the operator console's sign-in. Operators' sessions are their own table,
-- never merchant_sessions: a merchant's session id means nothing here and an operator's
-- means nothing in the merchant console or the API. Only the SHA-256 of a session id is
-- stored. Disabling an operator deletes their sessions in the same transaction, and a
-- session only counts while its operator is active.

CREATE TABLE operator_sessions (
    id_hash       bytea PRIMARY KEY,
    operator_id   uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    csrf          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,            -- absolute timeout
    ip            text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);

-- Failed sign-ins make the account wait (as merchant users do), shared by every node.
ALTER TABLE operators
    ADD COLUMN failed_sign_ins        integer NOT NULL DEFAULT 0,
    ADD COLUMN sign_in_blocked_until  timestamptz,
    ADD COLUMN last_sign_in_at        timestamptz;
