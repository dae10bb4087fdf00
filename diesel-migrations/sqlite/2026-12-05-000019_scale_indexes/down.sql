DROP INDEX blacklist_serial;
DROP INDEX containers_customer;
DROP INDEX licenses_never_activated;
DROP INDEX licenses_expires_at;
ALTER TABLE licenses DROP COLUMN expires_at;
