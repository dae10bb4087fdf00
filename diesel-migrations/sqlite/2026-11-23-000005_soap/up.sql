-- WS-Security UsernameToken nonces seen within the allowed clock window (a replay fails).
CREATE TABLE soap_nonces (
  nonce TEXT PRIMARY KEY,
  created_at TIMESTAMP NOT NULL
);
