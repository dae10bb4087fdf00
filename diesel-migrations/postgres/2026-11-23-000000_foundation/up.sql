CREATE TABLE firms (
  id BIGSERIAL PRIMARY KEY,
  firm_code BIGINT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  key_id TEXT NOT NULL,
  public_key TEXT NOT NULL,
  private_key_sealed TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE TABLE items (
  id BIGSERIAL PRIMARY KEY,
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  item_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  product_code BIGINT NOT NULL,
  options TEXT NOT NULL,
  active BOOLEAN NOT NULL,
  version INTEGER NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE customers (
  id BIGSERIAL PRIMARY KEY,
  external_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  locale TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE tickets (
  id BIGSERIAL PRIMARY KEY,
  code TEXT NOT NULL UNIQUE,
  customer_id BIGINT NOT NULL REFERENCES customers(id),
  state TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE TABLE orders (
  id BIGSERIAL PRIMARY KEY,
  source TEXT NOT NULL,
  erp_order_id TEXT NOT NULL,
  customer_id BIGINT NOT NULL REFERENCES customers(id),
  ticket_id BIGINT NOT NULL REFERENCES tickets(id),
  comment TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  UNIQUE (source, erp_order_id)
);
CREATE TABLE order_lines (
  id BIGSERIAL PRIMARY KEY,
  order_id BIGINT NOT NULL REFERENCES orders(id),
  batch_key TEXT NOT NULL,
  position INTEGER NOT NULL,
  item_id BIGINT NOT NULL REFERENCES items(id),
  quantity INTEGER NOT NULL,
  UNIQUE (order_id, batch_key, position)
);
CREATE TABLE licenses (
  id BIGSERIAL PRIMARY KEY,
  ticket_id BIGINT NOT NULL REFERENCES tickets(id),
  order_line_id BIGINT NOT NULL REFERENCES order_lines(id),
  item_id BIGINT NOT NULL REFERENCES items(id),
  firm_id BIGINT NOT NULL REFERENCES firms(id),
  product_code BIGINT NOT NULL,
  options TEXT NOT NULL,
  state TEXT NOT NULL,
  generation INTEGER NOT NULL,
  version INTEGER NOT NULL,
  serial TEXT,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE INDEX licenses_ticket ON licenses (ticket_id);
CREATE INDEX licenses_order_line ON licenses (order_line_id);
CREATE INDEX licenses_serial ON licenses (serial);
CREATE TABLE containers (
  id BIGSERIAL PRIMARY KEY,
  serial TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  customer_id BIGINT REFERENCES customers(id),
  public_key TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE settings (
  firm_id BIGINT PRIMARY KEY REFERENCES firms(id),
  body TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE users (
  id BIGSERIAL PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  active BOOLEAN NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE events (
  id BIGSERIAL PRIMARY KEY,
  at TIMESTAMP NOT NULL,
  actor TEXT NOT NULL,
  interface TEXT NOT NULL,
  action TEXT NOT NULL,
  order_id BIGINT,
  ticket TEXT,
  license_id BIGINT,
  serial TEXT,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX events_ticket ON events (ticket);
CREATE INDEX events_order ON events (order_id);
CREATE INDEX tickets_customer ON tickets (customer_id);
CREATE TABLE audit_head (
  id BIGINT PRIMARY KEY,
  last_event_id BIGINT NOT NULL,
  last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_event_id, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
