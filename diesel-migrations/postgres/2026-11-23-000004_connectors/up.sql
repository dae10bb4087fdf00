-- Every notification a connector received, with what became of it.
CREATE TABLE notifications (
  id BIGSERIAL PRIMARY KEY,
  connector TEXT NOT NULL,
  reference TEXT NOT NULL,
  received_at TIMESTAMP NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL,
  ticket TEXT,
  body TEXT NOT NULL
);
CREATE INDEX notifications_reference ON notifications (connector, reference);
-- Tickets to post back to an ERP; one per connector and order.
CREATE TABLE writebacks (
  id BIGSERIAL PRIMARY KEY,
  connector TEXT NOT NULL,
  order_id BIGINT NOT NULL REFERENCES orders(id),
  url TEXT NOT NULL,
  content_type TEXT NOT NULL,
  body TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at TIMESTAMP NOT NULL,
  claimed_by TEXT,
  claimed_until TIMESTAMP,
  last_error TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  sent_at TIMESTAMP,
  UNIQUE (connector, order_id)
);
CREATE INDEX writebacks_due ON writebacks (state, next_attempt_at);
