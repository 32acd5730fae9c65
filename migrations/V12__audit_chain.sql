-- Schema v12: the audit log becomes append-only and hash-chained (tamper-evident).
--
-- Each row gets `seq` (its place in the chain), `content_hash` = SHA-256 of its canonical
-- content, and `hash` = SHA-256(previous row's hash || content_hash). The first row's
-- previous hash is 32 zero bytes, or, once retention has cut the oldest rows, the hash kept
-- in the newest signed checkpoint (audit_checkpoints). `ecoupon audit verify` recomputes
-- all of it outside the database.
--
-- Ordering comes from the single chain-head row, locked FOR UPDATE by every insert: two
-- nodes inserting at once take turns and still form one chain (ids from the sequence may
-- be handed out in another order than commits, which is why the chain has its own `seq`).
--
-- The canonical content is a string of length-prefixed fields ("~" for NULL), so no field
-- can bleed into the next; the Rust side (store/audit.rs) builds the same string.
--
-- Two changes only are allowed, each behind a transaction-local setting and each visible
-- to `audit verify`:
--   * erasure (tenant purge): the tenant's rows lose their personal content but keep
--     seq, action, time and both hashes, so the chain still links; the purge's own entry
--     records how many were erased, and verify checks that count;
--   * retention: rows at or before the newest signed checkpoint may be deleted.

ALTER TABLE audit_log
    ADD COLUMN seq          bigint,
    ADD COLUMN salt         bytea,           -- random: an erased row's content hash cannot be guessed back
    ADD COLUMN content_hash bytea,
    ADD COLUMN hash         bytea,
    ADD COLUMN erased_at    timestamptz;

-- A tenant's audit rows are erased (not deleted) by a purge, so deleting a tenant must
-- not cascade into the log.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_tenant_id_fkey;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id);

CREATE TABLE audit_chain_head (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq   bigint NOT NULL,
    hash  bytea NOT NULL
);

-- Signed by the installation's Ed25519 key when retention removes the rows up to `seq`.
CREATE TABLE audit_checkpoints (
    seq         bigint PRIMARY KEY,
    hash        bytea NOT NULL,          -- the chain hash of row `seq`
    at          timestamptz NOT NULL,    -- that row's time
    -- Running totals over every row cut so far: erased rows, and erasures the cut
    -- `tenant.purge` entries declared. Signed with the rest, so verify can keep balancing
    -- erasures against their purges after either has been cut.
    erased_cut    bigint NOT NULL,
    declared_cut  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    public_key  bytea NOT NULL,
    signature   bytea NOT NULL
);

CREATE FUNCTION audit_field(value text) RETURNS text
    LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN value IS NULL THEN '~' ELSE octet_length(value)::text || ':' || value END $$;

CREATE FUNCTION audit_canonical(r audit_log) RETURNS bytea
    LANGUAGE sql STABLE AS
$$ SELECT convert_to('ecoupon-audit-v1|'
        || audit_field(r.seq::text)
        || audit_field(r.tenant_id::text)
        || audit_field(r.actor_id::text)
        || audit_field(r.actor)
        || audit_field(r.action)
        || audit_field(r.target)
        || audit_field(r.ip)
        || audit_field(to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || audit_field(r.detail::text)
        || audit_field(encode(r.salt, 'hex')), 'UTF8') $$;

-- Chain what is there already, in id order.
DO $$
DECLARE
    r audit_log;
    prev bytea := decode(repeat('00', 32), 'hex');
    n bigint := 0;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        r.seq := n;
        r.salt := uuid_send(gen_random_uuid());
        r.content_hash := sha256(audit_canonical(r));
        r.hash := sha256(prev || r.content_hash);
        UPDATE audit_log SET seq = r.seq, salt = r.salt, content_hash = r.content_hash,
                             hash = r.hash
        WHERE id = r.id;
        prev := r.hash;
    END LOOP;
    INSERT INTO audit_chain_head (seq, hash) VALUES (n, prev);
END $$;

ALTER TABLE audit_log
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN content_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT audit_log_seq UNIQUE (seq);

CREATE FUNCTION audit_chain_insert() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    head audit_chain_head;
BEGIN
    SELECT * INTO head FROM audit_chain_head FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.at := coalesce(NEW.at, now());
    NEW.salt := uuid_send(gen_random_uuid());
    NEW.erased_at := NULL;
    NEW.content_hash := sha256(audit_canonical(NEW));
    NEW.hash := sha256(head.hash || NEW.content_hash);
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash;
    RETURN NEW;
END
$$;

CREATE FUNCTION audit_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.tenant_id IS NOT NULL
       AND OLD.tenant_id::text = current_setting('ecoupon.audit_erasure', true)
       AND OLD.erased_at IS NULL
       AND NEW.erased_at IS NOT NULL
       AND NEW.tenant_id IS NULL AND NEW.actor_id IS NULL AND NEW.salt IS NULL
       AND NEW.actor = '' AND NEW.target = '' AND NEW.ip = '' AND NEW.detail = '{}'
       AND NEW.id = OLD.id AND NEW.seq = OLD.seq AND NEW.action = OLD.action
       AND NEW.at = OLD.at AND NEW.content_hash = OLD.content_hash AND NEW.hash = OLD.hash
    THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE'
       AND current_setting('ecoupon.audit_retention', true) = 'on'
       AND OLD.seq <= (SELECT max(seq) FROM audit_checkpoints)
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_chain_insert BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_chain_insert();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
