-- Schema v6: a campaign's coupon codes may use a charset of its own (stored as the
-- characters themselves). The default leaves out look-alikes: no 0/O, 1/I/L.
ALTER TABLE campaigns ADD COLUMN code_charset text NOT NULL DEFAULT '23456789ABCDEFGHJKMNPQRSTUVWXYZ'
    CHECK (code_charset ~ '^[A-Z0-9]{10,64}$');
ALTER TABLE campaigns ADD CONSTRAINT campaigns_code_length CHECK (code_length BETWEEN 6 AND 32);
ALTER TABLE campaigns ADD CONSTRAINT campaigns_code_prefix CHECK (code_prefix ~ '^[A-Z0-9]{0,8}$');
