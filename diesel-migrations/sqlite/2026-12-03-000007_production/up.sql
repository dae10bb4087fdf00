-- Production orders: N dongles programmed on the production line, each to hold the same
-- licenses. The order (and its ticket) holds N x the lines' licenses; each slot owns the
-- licenses of one dongle. Whether a slot is programmed is not stored: it follows from its
-- licenses (a receipt through any door counts).
CREATE TABLE production_orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id BIGINT NOT NULL UNIQUE REFERENCES orders(id),
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  dongles INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  cancelled_at TIMESTAMP
);
-- One row per dongle of an order. A serial takes at most one slot of all orders (two
-- bridges never get one slot twice, one dongle never two slots); every change of a slot
-- is one conditional write on its version. last_failure_serial names the dongle whose
-- failure was counted last (a report sent again is not counted twice); receipt_recorded_at
-- says the production receipt of the slot's dongle was recorded (its event, once).
CREATE TABLE production_slots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  production_order_id BIGINT NOT NULL REFERENCES production_orders(id),
  slot INTEGER NOT NULL,
  serial TEXT UNIQUE,
  station TEXT,
  assigned_at TIMESTAMP,
  failures INTEGER NOT NULL DEFAULT 0,
  last_failure TEXT,
  last_failure_serial TEXT,
  receipt_recorded_at TIMESTAMP,
  version INTEGER NOT NULL DEFAULT 1,
  UNIQUE (production_order_id, slot)
);
CREATE INDEX production_slots_failed ON production_slots (production_order_id, last_failure_serial);
CREATE TABLE production_slot_licenses (
  slot_id BIGINT NOT NULL REFERENCES production_slots(id),
  license_id BIGINT PRIMARY KEY REFERENCES licenses(id)
);
CREATE INDEX production_slot_licenses_slot ON production_slot_licenses (slot_id);
