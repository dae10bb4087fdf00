DROP INDEX licenses_serial;
CREATE INDEX licenses_serial ON licenses (serial);
DROP INDEX licenses_ticket;
CREATE INDEX licenses_ticket ON licenses (ticket_id);
DROP INDEX blacklist_serial;
DROP INDEX containers_customer;
DROP INDEX licenses_never_activated;
DROP INDEX licenses_expires_at;
ALTER TABLE licenses DROP COLUMN expires_at;
