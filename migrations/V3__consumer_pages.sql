-- Schema v3: what consumer pages need.

-- Who may claim: 'none' (a device is a consumer) or 'required' (sign in with a provider).
ALTER TABLE campaigns ADD COLUMN signin text NOT NULL DEFAULT 'none'
    CHECK (signin IN ('none', 'required'));

-- The merchant's theme, applied to claim and coupon pages through CSS variables.
ALTER TABLE tenants ADD COLUMN brand_color text NOT NULL DEFAULT '#d9480f'
    CHECK (brand_color ~ '^#[0-9a-f]{6}$');
ALTER TABLE tenants ADD COLUMN accent_color text NOT NULL DEFAULT '#1f2937'
    CHECK (accent_color ~ '^#[0-9a-f]{6}$');

-- A consumer's coupons, for the wallet.
CREATE INDEX coupons_consumer ON coupons (consumer, claimed_at DESC);
