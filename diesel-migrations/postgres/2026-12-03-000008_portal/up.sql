-- The license portal's sessions, kept in the database so that any node serves them. The
-- cookie carries a random token; only its SHA-256 is stored, so a copy of the database
-- opens no session.
CREATE TABLE portal_sessions (
  id TEXT PRIMARY KEY,
  -- How the customer logged in ('ticket'; single sign-on adds its own word).
  method TEXT NOT NULL,
  -- The ticket codes (as stored) the session may see, as a JSON list.
  tickets TEXT NOT NULL,
  -- With single sign-on: every ticket of this customer as well.
  customer_id BIGINT,
  -- The offline transfer in progress (JSON), empty when there is none.
  flow TEXT NOT NULL DEFAULT '',
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX portal_sessions_expires_at ON portal_sessions (expires_at);
-- Failed portal logins, one row per client address and per ticket named: counted across
-- nodes to hold back an address or a ticket after too many failures.
CREATE TABLE portal_login_failures (
  id BIGSERIAL PRIMARY KEY,
  key TEXT NOT NULL,
  at TIMESTAMP NOT NULL
);
CREATE INDEX portal_login_failures_key_at ON portal_login_failures (key, at);
