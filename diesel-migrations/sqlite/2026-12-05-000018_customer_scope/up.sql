-- Customers are known by their external id within a scope: '' for the vendor's own (the JSON
-- API, SOAP, the CLI, the portal), a connector's source for the customers its shop or ERP
-- sends, so that a shop's customer 1001 and the ERP's customer 1001 stay two customers.
-- SQLite cannot drop a column's UNIQUE: the table is made again (the migration runs with
-- foreign keys off and checks them after, `store::run_migrations`), the scope column last.
CREATE TABLE customers_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  external_id TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  locale TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  scope TEXT NOT NULL DEFAULT '',
  UNIQUE (scope, external_id)
);
INSERT INTO customers_new (id, external_id, name, email, locale, created_at, updated_at, scope)
  SELECT id, external_id, name, email, locale, created_at, updated_at, '' FROM customers;
-- The ids of deleted customers are not given again: the new table's counter goes on from
-- the old one's.
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'customers_new', seq FROM sqlite_sequence WHERE name = 'customers'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'customers_new');
UPDATE sqlite_sequence
  SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('customers', 'customers_new'))
  WHERE name = 'customers_new';
DROP TABLE customers;
ALTER TABLE customers_new RENAME TO customers;
-- A customer whose every order a connector placed (the history's `order.created` event of
-- each came through the connector interface), all under one source, was made by that shop
-- or ERP: it moves to that source's scope. Everyone else (made through the JSON API, SOAP,
-- the CLI, the back office, the portal, or by a connector and one of those) stays the
-- vendor's. Ids do not change.
UPDATE customers SET scope = (
    SELECT MIN(o.source) FROM orders o WHERE o.customer_id = customers.id)
  WHERE (SELECT COUNT(DISTINCT o.source) FROM orders o WHERE o.customer_id = customers.id) = 1
    AND NOT EXISTS (
      SELECT 1 FROM orders o
      WHERE o.customer_id = customers.id
        AND NOT EXISTS (
          SELECT 1 FROM events e
          WHERE e.order_id = o.id AND e.action = 'order.created'
            AND e.interface = 'connector'));
-- Lookups by external id alone (the back office's search, single sign-on).
CREATE INDEX customers_external_id ON customers (external_id);
