-- Cloud containers: a container kept on the server, used online with a credential file.
-- One certificate authority per firm code; its private key is sealed under the master key
-- like the firms' signing keys.
CREATE TABLE cloud_authorities (
  firm_id BIGINT PRIMARY KEY REFERENCES firms(id),
  certificate TEXT NOT NULL,
  private_key_sealed TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
-- A credential file: a client certificate the firm's authority issued for one cloud
-- container. The fingerprint is the SHA-256 of the certificate (DER), in hex. Revoked
-- credentials are kept (who and why); every use looks the row up, so a revocation holds on
-- every node at once.
CREATE TABLE cloud_credentials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  container_id BIGINT NOT NULL REFERENCES containers(id),
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  fingerprint TEXT NOT NULL UNIQUE,
  not_after TIMESTAMP NOT NULL,
  issued_by TEXT NOT NULL,
  issued_at TIMESTAMP NOT NULL,
  revoked_at TIMESTAMP,
  revoked_by TEXT,
  revoked_reason TEXT
);
CREATE INDEX cloud_credentials_container ON cloud_credentials (container_id);
-- Short-lived access tokens, each got by a request the credential's key signed. Only the
-- SHA-256 of a token is kept. The request's nonce is unique: a replayed request is refused
-- for as long as its signature would be accepted (the token outlives that window).
CREATE TABLE cloud_tokens (
  token_hash TEXT PRIMARY KEY,
  credential_id BIGINT NOT NULL REFERENCES cloud_credentials(id),
  nonce TEXT NOT NULL UNIQUE,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX cloud_tokens_expires_at ON cloud_tokens (expires_at);
-- Seats of the licenses in cloud containers. A license of n seats has slots 0..n-1 and the
-- unique (license_id, slot) makes the database refuse a seat beyond the quantity, whatever
-- two nodes counted. The id is the lease's fencing token: never reused, so a heartbeat for
-- a seat that was reclaimed (and maybe taken again) finds nothing.
CREATE TABLE cloud_seats (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  license_id BIGINT NOT NULL REFERENCES licenses(id),
  slot INTEGER NOT NULL,
  credential_id BIGINT NOT NULL REFERENCES cloud_credentials(id),
  station TEXT NOT NULL,
  holders INTEGER NOT NULL,
  opened_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL,
  borrowed_license_id BIGINT REFERENCES licenses(id),
  UNIQUE (license_id, slot)
);
-- A seat borrowed into a local container: held (without heartbeats) by the license made for
-- the borrow until that license comes back or the seat's time (the borrow's end) runs out.
CREATE UNIQUE INDEX cloud_seats_borrowed ON cloud_seats (borrowed_license_id);
-- Licenses made for borrows, kept after their seat's time ran out: such a license is
-- deleted when it comes back, never made available on its ticket.
CREATE TABLE cloud_borrows (
  license_id BIGINT PRIMARY KEY REFERENCES licenses(id),
  from_license_id BIGINT NOT NULL REFERENCES licenses(id),
  until TIMESTAMP NOT NULL
);
CREATE INDEX cloud_seats_expires_at ON cloud_seats (expires_at);
CREATE INDEX cloud_seats_credential ON cloud_seats (credential_id);
CREATE INDEX cloud_seats_station ON cloud_seats (license_id, station);
-- Use per license and UTC day: seats taken, the most in use at once, and denials.
CREATE TABLE cloud_use_days (
  license_id BIGINT NOT NULL REFERENCES licenses(id),
  day TEXT NOT NULL,
  opened BIGINT NOT NULL,
  peak INTEGER NOT NULL,
  denials BIGINT NOT NULL,
  PRIMARY KEY (license_id, day)
);
