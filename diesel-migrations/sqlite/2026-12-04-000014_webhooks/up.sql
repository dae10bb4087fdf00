-- Outbound events: a vendor's CRM or support desk subscribes to kinds of history events at
-- a URL. Events are read from the history in its order, after the subscription's cursor
-- (the last event it has looked at; a new subscription starts at the history's head), and
-- queued as deliveries in the transaction that moves the cursor, so each event is queued
-- once per subscription however many nodes look.
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  -- Kinds of events, comma separated: "license.activated", "license.*" or "*".
  events TEXT NOT NULL,
  -- The HMAC-SHA256 key of the signatures (hex), shown once when the subscription is made,
  -- kept sealed under the master key.
  secret TEXT NOT NULL,
  description TEXT NOT NULL,
  active BOOLEAN NOT NULL,
  cursor_event_id BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
-- One delivery per subscription and event; the queue columns are the outbox's. A
-- subscription's deliveries are sent one at a time in event order.
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id BIGINT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  event_id BIGINT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at TIMESTAMP NOT NULL,
  claimed_by TEXT,
  claimed_until TIMESTAMP,
  last_error TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  sent_at TIMESTAMP,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, state, id);
