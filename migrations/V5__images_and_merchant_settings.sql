-- Schema v5: merchant logos and campaign images, and which sign-in providers a merchant
-- accepts.

-- Images live in the database: never on a path a web server could execute, included in
-- every backup, and removed with their tenant. They are checked by content on upload.
CREATE TABLE images (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    content_type  text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    bytes         bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX images_tenant ON images (tenant_id);

ALTER TABLE tenants ADD COLUMN logo_image_id uuid REFERENCES images (id) ON DELETE SET NULL;
ALTER TABLE campaigns ADD COLUMN image_id uuid REFERENCES images (id) ON DELETE SET NULL;

-- Providers this merchant's consumers may sign in with; empty means every configured one.
ALTER TABLE tenants ADD COLUMN signin_providers text[] NOT NULL DEFAULT '{}';
