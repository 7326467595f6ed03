-- 0001_initial: tenants, API keys, voices and usage records, with row-level security.
--
-- Applied by `tts-gateway migrate` (or `psql -v app_role=tts_app -v admin_role=tts_admin -f ...`)
-- as the role that owns the schema: the DBA's role, or Supabase's `postgres`. Superuser is not
-- needed; CREATEROLE is, to create the two roles below (where the migrating role lacks it, a DBA
-- creates them beforehand and this file only grants to them).
--
-- Roles (both NOLOGIN; the API's login role is granted both and switches per transaction with
-- SET LOCAL ROLE, so the policies apply even to a login that owns the tables or is a superuser):
--   app_role   (DATABASE_APP_ROLE, tts_app):     what a tenant's request does. Sees and writes only
--              the rows of the tenant named by the transaction-local setting app.tenant_id.
--   admin_role (DATABASE_ADMIN_ROLE, tts_admin): tenant and key management. All of tenants and
--              api_keys; no privilege at all on voices or usage.
--
-- Finding a tenant from an API key, before the tenant is known: the app role may read the one
-- api_keys row whose key_hash equals the transaction-local setting app.key_hash. Only a caller
-- that holds the key can compute that hash, so this exposes nothing else; it is narrower than a
-- SECURITY DEFINER lookup function, which would run with the owner's rights.

SELECT set_config('tts.app_role', :'app_role', false), set_config('tts.admin_role', :'admin_role', false);

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY[current_setting('tts.app_role'), current_setting('tts.admin_role')] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
        END IF;
        -- Lets the migrating role (often also the API's login) switch to the role.
        BEGIN
            EXECUTE format('GRANT %I TO %I', r, current_user);
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
            RAISE NOTICE 'could not grant % to %; grant it to the API login role', r, current_user;
        END;
    END LOOP;
END
$$;

CREATE TABLE tenants (
    id                      uuid PRIMARY KEY,
    name                    varchar(200) NOT NULL UNIQUE,
    status                  varchar(16) NOT NULL,
    requests_per_minute     integer NOT NULL,
    requests_per_hour       integer NOT NULL,
    requests_per_day        integer NOT NULL,
    max_concurrent_streams  integer NOT NULL,
    monthly_characters      bigint NOT NULL,
    max_voices              integer NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash    varchar(64) NOT NULL,  -- HMAC-SHA256 (hex) of the key; the key itself is never stored
    prefix      varchar(16) NOT NULL,  -- the key's first characters, to tell keys apart
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,           -- end of the grace period after a rotation
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);

CREATE TABLE voices (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name               varchar(100) NOT NULL,
    description        text NOT NULL,
    language           varchar(16) NOT NULL,
    gender             varchar(16),
    engine             varchar(16) NOT NULL,
    version            integer NOT NULL,
    gpt_cond_latent    bytea NOT NULL,       -- AES-GCM sealed float32 little-endian
    latent_shape       varchar(32) NOT NULL,  -- e.g. 32x1024
    speaker_embedding  bytea NOT NULL,       -- AES-GCM sealed float32 little-endian
    audio_ciphertext   bytea NOT NULL,
    audio_nonce        bytea NOT NULL,
    audio_sample_rate  integer NOT NULL,
    audio_duration_s   double precision NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX voices_tenant_id_name_key ON voices (tenant_id, name);

CREATE TABLE usage_records (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request_id     varchar(64) NOT NULL,
    endpoint       varchar(64) NOT NULL,
    engine         varchar(32),
    voice_id       varchar(64),
    characters     integer NOT NULL,
    audio_seconds  double precision NOT NULL,
    cache_hit      boolean NOT NULL,
    latency_ms     integer NOT NULL,
    status_code    integer NOT NULL,
    day            date NOT NULL,  -- UTC day of created_at
    created_at     timestamptz NOT NULL
);
CREATE INDEX usage_records_tenant_id_created_at_idx ON usage_records (tenant_id, created_at);

-- Row-level security, enabled and forced (the owner is bound too). With no policy for a role,
-- that role sees no rows.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE voices ENABLE ROW LEVEL SECURITY;
ALTER TABLE voices FORCE ROW LEVEL SECURITY;
ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records FORCE ROW LEVEL SECURITY;

CREATE POLICY tenants_self ON tenants FOR SELECT TO :"app_role"
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY tenants_manage ON tenants FOR ALL TO :"admin_role" USING (true) WITH CHECK (true);

CREATE POLICY api_keys_presented ON api_keys FOR SELECT TO :"app_role"
    USING (key_hash = current_setting('app.key_hash', true));
CREATE POLICY api_keys_manage ON api_keys FOR ALL TO :"admin_role" USING (true) WITH CHECK (true);

CREATE POLICY voices_tenant ON voices FOR ALL TO :"app_role"
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

CREATE POLICY usage_records_tenant ON usage_records FOR ALL TO :"app_role"
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Least privilege: nothing for PUBLIC (on Supabase that includes the anon and authenticated API roles).
REVOKE ALL ON tenants, api_keys, voices, usage_records FROM PUBLIC;
GRANT SELECT ON tenants, api_keys TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON voices TO :"app_role";
GRANT SELECT, INSERT ON usage_records TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, api_keys TO :"admin_role";

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON tenants, api_keys, voices, usage_records FROM %I', r);
        END IF;
    END LOOP;
END
$$;
