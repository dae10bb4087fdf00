-- When a receipt last proved the license in a container, and how many re-activations the
-- customer has done alone (the self-service count).
ALTER TABLE licenses ADD COLUMN activated_at TIMESTAMP;
ALTER TABLE licenses ADD COLUMN self_service_used INTEGER NOT NULL DEFAULT 0;
UPDATE licenses SET activated_at = (SELECT MAX(e.at) FROM events e
  WHERE e.license_id = licenses.id AND e.action = 'license.activated');
-- Containers that must never get licenses of the firm again; one open entry per container.
CREATE TABLE blacklist (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  serial TEXT NOT NULL,
  description TEXT NOT NULL,
  placed_at TIMESTAMP NOT NULL,
  placed_by TEXT NOT NULL,
  lock_update_id BIGINT,
  lock_sent_at TIMESTAMP,
  lock_validated_at TIMESTAMP,
  removed_at TIMESTAMP,
  removed_by TEXT,
  removed_reason TEXT
);
CREATE UNIQUE INDEX blacklist_open ON blacklist (firm_id, serial) WHERE removed_at IS NULL;
-- Entries a container must delete although their license now lives elsewhere (the old
-- container after a re-activation that withdraws, or after a reset).
CREATE TABLE withdrawals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  container_id BIGINT NOT NULL REFERENCES containers(id),
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  license_id BIGINT NOT NULL REFERENCES licenses(id),
  reason TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  done_at TIMESTAMP
);
CREATE INDEX withdrawals_open ON withdrawals (container_id, firm_id);
-- Requests the policy does not allow alone, for support to decide.
CREATE TABLE approvals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  kind TEXT NOT NULL,
  license_id BIGINT REFERENCES licenses(id),
  old_serial TEXT NOT NULL,
  serial TEXT NOT NULL,
  why TEXT NOT NULL,
  state TEXT NOT NULL,
  requested_at TIMESTAMP NOT NULL,
  decided_by TEXT,
  decided_at TIMESTAMP,
  reason TEXT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state);
-- One open request for the same thing, however often the customer asks.
CREATE UNIQUE INDEX approvals_open ON approvals (kind, old_serial, serial, COALESCE(license_id, 0))
  WHERE state = 'open';
-- Activations per firm and calendar month (UTC), against the monthly quota. Without a
-- quota each writer (of each node) counts in a shard of its own, so that parallel writers
-- never queue behind one row; with a quota the count is kept in shard 0 under its lock.
CREATE TABLE activation_counts (
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  month TEXT NOT NULL,
  shard BIGINT NOT NULL,
  activations BIGINT NOT NULL,
  refused BIGINT NOT NULL,
  PRIMARY KEY (firm_id, month, shard)
);
CREATE INDEX events_license ON events (license_id);
CREATE INDEX events_serial ON events (serial);
