ALTER TABLE users DROP COLUMN digest_secret;
DROP TABLE soap_nonces;
