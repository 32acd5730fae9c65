-- Schema v14: operator accounts, the people who run the installation (not merchants'
-- users, whom merchants manage themselves). A new operator is pending until a different
-- active operator approves; only the very first is created active (bootstrap). Both steps
-- are in the audit log. Operators have no way to read merchants' credentials or act as a
-- merchant's user: nothing joins the two.

CREATE TABLE operators (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    password_hash  text NOT NULL,          -- Argon2id, PHC string
    status         text NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    requested_by   text NOT NULL,          -- who ran `operator request` (or "bootstrap")
    approved_by    uuid REFERENCES operators (id),
    approved_at    timestamptz,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (approved_by IS NULL OR approved_by <> id)
);
CREATE UNIQUE INDEX operators_email ON operators (lower(email));
