-- Schema v12: the default brand colour reaches WCAG 2 AA (4.5:1) for text.
--
-- The old default (#d9480f) gives white text on it only 4.3:1, and as link text on the
-- consumer pages' background 3.8:1; the API now refuses any colour below 4.5:1 both ways
-- (src/domain/theme.rs). Tenants on #d9480f (the default, or chosen while 3:1 was enough)
-- move to the new default, the same orange a shade darker; it can no longer be set.
ALTER TABLE tenants ALTER COLUMN brand_color SET DEFAULT '#c2410c';
UPDATE tenants SET brand_color = '#c2410c' WHERE brand_color = '#d9480f';
