-- The back office's sessions (vendor staff under /admin), kept in the database so that any
-- node serves them. The cookie carries a random token; only its SHA-256 is stored. The
-- user is read with every request, so a changed role or a deactivated user holds at once.
CREATE TABLE admin_sessions (
  id TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at TIMESTAMP NOT NULL,
  -- The last request; a session idle for longer than admin_idle_minutes is over.
  last_seen_at TIMESTAMP NOT NULL,
  -- The end however busy it is (admin_session_hours after the login).
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX admin_sessions_user_id ON admin_sessions (user_id);
CREATE INDEX admin_sessions_last_seen_at ON admin_sessions (last_seen_at);
-- The back office finds orders by ERP order id (of any source), by customer and by ticket,
-- and its dashboard counts the recent events of a few kinds per day.
CREATE INDEX orders_erp_order_id ON orders (erp_order_id);
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE INDEX orders_ticket_id ON orders (ticket_id);
CREATE INDEX events_action_at ON events (action, at);
-- The portal's colours and license columns as set in the back office (one row); an empty
-- value is the configuration's (portal_color, portal_accent_color, portal_columns).
CREATE TABLE portal_look (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  color TEXT NOT NULL,
  accent_color TEXT NOT NULL,
  license_columns TEXT NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
