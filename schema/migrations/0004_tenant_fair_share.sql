-- 0004_tenant_fair_share: a tenant's priority tier and its weight in the fair shares of the engines
-- under contention (control_plane/services/tiers.py; set through the admin API). Existing tenants
-- become "standard", weight 1. The row-level security of 0001 covers the new columns.
ALTER TABLE tenants ADD COLUMN tier varchar(32) NOT NULL DEFAULT 'standard';
ALTER TABLE tenants ADD COLUMN weight double precision NOT NULL DEFAULT 1.0
    CONSTRAINT tenants_weight_range CHECK (weight >= 0.01 AND weight <= 100);
