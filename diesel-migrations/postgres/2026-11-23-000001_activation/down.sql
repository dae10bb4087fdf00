DROP TABLE firm_keys;
DROP TABLE updates;
DROP TABLE container_firms;
DROP INDEX containers_public_key;
ALTER TABLE containers DROP COLUMN state_reason;
ALTER TABLE containers DROP COLUMN fingerprint;
ALTER TABLE containers DROP COLUMN enc_key;
