-- The key that signs checkpoints of the history (Ed25519, one row): its public half in hex,
-- its private half sealed under the master key, which the database does not hold.
CREATE TABLE audit_key (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  public_key TEXT NOT NULL,
  sealed_private TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
-- Signed checkpoints of the chain: event event_id had hash event_hash when signed_at came.
-- Whoever rewrites the history and recomputes the chain cannot sign the new hashes.
CREATE TABLE audit_checkpoints (
  id BIGSERIAL PRIMARY KEY,
  event_id BIGINT NOT NULL,
  event_hash TEXT NOT NULL,
  signed_at TIMESTAMP NOT NULL,
  signature TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_event_id ON audit_checkpoints (event_id);
