-- Nothing a user waits for reads a growing table from its start (tests/it/scale.rs checks
-- the plans). The reports read their licenses page by page in key order, each page a seek
-- into an index.
-- The expiring report: the expiration time, to the second, as the license options name it
-- (RFC 3339 in UTC, so its first 19 characters sort as the times do), kept by the database.
ALTER TABLE licenses ADD COLUMN expires_at TEXT
  GENERATED ALWAYS AS (substr(json_extract(options, '$.expiration_time'), 1, 19)) VIRTUAL;
-- Deleted licenses are in no report: the index leaves them out, so that counting what
-- expires (the dashboard) reads the index alone.
CREATE INDEX licenses_expires_at ON licenses (expires_at, id)
  WHERE expires_at IS NOT NULL AND state <> 'deleted';
-- The never-activated report: licenses made and never activated, by id.
CREATE INDEX licenses_never_activated ON licenses (id)
  WHERE state = 'available' AND activated_at IS NULL AND generation = 1;
-- A customer's containers (its page, the customer-containers report).
CREATE INDEX containers_customer ON containers (customer_id);
-- A serial's blacklist entries, open or removed, newest first (the container's page).
CREATE INDEX blacklist_serial ON blacklist (serial, id);
