-- Operators get the same optional second factor as merchant users (RFC 6238 TOTP): a
-- secret enrolled from /ops/account, turned on only once a code from the app matches,
-- and each code accepted once (totp_last_step). A session that gave the password but not
-- yet the code is mfa_pending and opens no operator page.
ALTER TABLE operators
    ADD COLUMN totp_secret     bytea,
    ADD COLUMN totp_enabled    boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_last_step  bigint,
    ADD CHECK (NOT totp_enabled OR totp_secret IS NOT NULL);

ALTER TABLE operator_sessions
    ADD COLUMN mfa_pending boolean NOT NULL DEFAULT false;
