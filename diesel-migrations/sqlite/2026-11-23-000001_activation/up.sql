-- Containers: their X25519 key, fingerprint and why they were stopped.
ALTER TABLE containers ADD COLUMN enc_key TEXT NOT NULL DEFAULT '';
ALTER TABLE containers ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '[]';
ALTER TABLE containers ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX containers_public_key ON containers (public_key);
-- What each container has confirmed, per firm code: the server's mirror of its content.
CREATE TABLE container_firms (
  container_id BIGINT NOT NULL REFERENCES containers(id),
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  counter BIGINT NOT NULL,
  digest TEXT NOT NULL,
  content TEXT NOT NULL,
  confirmed_at TIMESTAMP NOT NULL,
  PRIMARY KEY (container_id, firm_id)
);
-- Every update handed out; one of those made from the confirmed counter may be confirmed.
CREATE TABLE updates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  container_id BIGINT NOT NULL REFERENCES containers(id),
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  counter_from BIGINT NOT NULL,
  counter_to BIGINT NOT NULL,
  digest_after TEXT NOT NULL,
  content_after TEXT NOT NULL,
  changes TEXT NOT NULL,
  state TEXT NOT NULL,
  fulfils TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL,
  confirmed_at TIMESTAMP
);
CREATE INDEX updates_container ON updates (container_id, firm_id, counter_from);
-- Every key a firm has had; each endorsed by the one before it.
CREATE TABLE firm_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  key_id TEXT NOT NULL UNIQUE,
  public_key TEXT NOT NULL,
  private_key_sealed TEXT NOT NULL,
  endorsement TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
INSERT INTO firm_keys (firm_id, key_id, public_key, private_key_sealed, endorsement, created_at)
  SELECT id, key_id, public_key, private_key_sealed, '', created_at FROM firms;
