-- Self-registration in the license portal: a customer gives an e-mail address and gets a
-- link by mail; following it proves the address and logs them in. Only the SHA-256 of the
-- link's token is stored; a link is taken once and lapses at expires_at.
CREATE TABLE portal_registrations (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  locale TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX portal_registrations_expires_at ON portal_registrations (expires_at);
