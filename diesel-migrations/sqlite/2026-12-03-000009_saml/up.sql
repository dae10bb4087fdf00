-- SAML single sign-on (the portal as a Service Provider). Everything a node must know to
-- judge an answer of the identity provider is here, so that any node can take it.

-- The requests this server sent to the identity provider (authentication and logout): a
-- random 128-bit id, used once, until it expires. An answer is taken only with the id of
-- a request issued here and the RelayState that went with it (the identity provider's
-- cross-site POST carries no SameSite cookie, so the RelayState binds it to its request).
CREATE TABLE saml_requests (
  id TEXT PRIMARY KEY,
  -- 'login' or 'logout'.
  kind TEXT NOT NULL,
  -- The SHA-256 (hex) of the RelayState sent with the request.
  relay_state TEXT NOT NULL,
  -- Where the customer goes after the login (a path inside the portal).
  next_path TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_requests_expires_at ON saml_requests (expires_at);

-- The assertions taken, until they expire: the same assertion again is a replay, refused
-- on every node.
CREATE TABLE saml_assertions (
  id TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  taken_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_assertions_expires_at ON saml_assertions (expires_at);

-- The people who log in through the identity provider, by its name for them (issuer and
-- NameID); the first login links them to the customer their customer number names.
CREATE TABLE saml_users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  issuer TEXT NOT NULL,
  name_id TEXT NOT NULL,
  customer_id BIGINT NOT NULL REFERENCES customers(id),
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  last_login_at TIMESTAMP NOT NULL,
  UNIQUE (issuer, name_id)
);

-- Which portal session a single sign-on started (for single logout: the identity
-- provider names the user and its session index).
CREATE TABLE saml_sessions (
  session_id TEXT PRIMARY KEY REFERENCES portal_sessions(id) ON DELETE CASCADE,
  user_id BIGINT NOT NULL REFERENCES saml_users(id),
  name_id TEXT NOT NULL,
  name_id_format TEXT NOT NULL,
  session_index TEXT NOT NULL
);
CREATE INDEX saml_sessions_user_id ON saml_sessions (user_id);
