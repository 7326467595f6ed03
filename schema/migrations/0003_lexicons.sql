-- 0003_lexicons: pronunciation lexicons (W3C PLS documents) per tenant, with row-level security.
--
-- Like voices: the app role sees and writes only the rows of the tenant named by the
-- transaction-local setting app.tenant_id; the admin role has no privilege on them at all.

CREATE TABLE lexicons (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name              varchar(64) NOT NULL,
    language          varchar(16) NOT NULL,
    content           text NOT NULL,       -- the PLS document as uploaded
    lexemes           integer NOT NULL,
    size_bytes        integer NOT NULL,
    apply_by_default  boolean NOT NULL,    -- applied to every request of the tenant
    version           integer NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX lexicons_tenant_id_name_key ON lexicons (tenant_id, name);

ALTER TABLE lexicons ENABLE ROW LEVEL SECURITY;
ALTER TABLE lexicons FORCE ROW LEVEL SECURITY;

CREATE POLICY lexicons_tenant ON lexicons FOR ALL TO :"app_role"
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

REVOKE ALL ON lexicons FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON lexicons TO :"app_role";

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON lexicons FROM %I', r);
        END IF;
    END LOOP;
END
$$;
