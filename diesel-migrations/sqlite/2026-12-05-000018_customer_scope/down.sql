DROP INDEX customers_external_id;
-- Back to one scope: fails if two scopes share an external id.
CREATE TABLE customers_old (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  external_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  locale TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
INSERT INTO customers_old (id, external_id, name, email, locale, created_at, updated_at)
  SELECT id, external_id, name, email, locale, created_at, updated_at FROM customers;
DROP TABLE customers;
ALTER TABLE customers_old RENAME TO customers;
