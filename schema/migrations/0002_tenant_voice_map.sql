-- 0002_tenant_voice_map: a tenant's map from OpenAI voice names to its own voices (JSON text,
-- e.g. {"nova": "<voice id>"}), read by POST /v1/audio/speech and set through the admin API or
-- PUT /v1/tenant/config. The row-level security of 0001 covers the new column.
ALTER TABLE tenants ADD COLUMN voice_map text NOT NULL DEFAULT '{}';
