DROP INDEX customers_external_id;
-- Back to one scope: fails if two scopes share an external id.
ALTER TABLE customers DROP CONSTRAINT customers_scope_external_id_key;
ALTER TABLE customers ADD CONSTRAINT customers_external_id_key UNIQUE (external_id);
ALTER TABLE customers DROP COLUMN scope;
