-- Each request (by its nonce) that a container's contact used, and for what: the same
-- request may be sent again for the same operation (a retry whose answer was lost), not
-- for another one (a request file seen by someone else cannot return the licenses).
CREATE TABLE request_uses (
  container_id BIGINT NOT NULL,
  nonce TEXT NOT NULL,
  operation TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  PRIMARY KEY (container_id, nonce)
);
CREATE INDEX request_uses_created_at ON request_uses (created_at);
