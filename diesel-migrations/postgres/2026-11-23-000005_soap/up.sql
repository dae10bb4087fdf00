-- WS-Security UsernameToken nonces seen within the allowed clock window (a replay fails).
CREATE TABLE soap_nonces (
  nonce TEXT PRIMARY KEY,
  created_at TIMESTAMP NOT NULL
);
-- The password sealed with the master key, for WS-Security PasswordDigest (which needs the
-- password itself); empty until the password is set or changed.
ALTER TABLE users ADD COLUMN digest_secret TEXT NOT NULL DEFAULT '';
