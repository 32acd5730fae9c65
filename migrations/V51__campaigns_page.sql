-- GET /api/v1/campaigns pages a tenant's campaigns newest first by keyset
-- (created_at, id): the index in that order answers each page with one range scan,
-- ties on created_at included. It covers every use of the narrower index it replaces.
CREATE INDEX campaigns_tenant_page ON campaigns (tenant_id, created_at DESC, id DESC);
DROP INDEX campaigns_tenant;
