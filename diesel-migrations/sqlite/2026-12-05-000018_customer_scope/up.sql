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
DROP TABLE customers;
ALTER TABLE customers_new RENAME TO customers;
-- A customer whose every order came through connectors of one source (a notification names
-- each of their tickets) was made by that shop or ERP: it moves to that source's scope.
-- Everyone else (made through the JSON API, SOAP, the CLI, the portal, or by several doors)
-- stays the vendor's. Ids do not change.
UPDATE customers SET scope = (
    SELECT MIN(o.source) FROM orders o WHERE o.customer_id = customers.id)
  WHERE (SELECT COUNT(DISTINCT o.source) FROM orders o WHERE o.customer_id = customers.id) = 1
    AND NOT EXISTS (
      SELECT 1 FROM orders o JOIN tickets t ON t.id = o.ticket_id
      WHERE o.customer_id = customers.id
        AND NOT EXISTS (
          SELECT 1 FROM notifications n
          WHERE REPLACE(n.ticket, '-', '') = t.code
            AND n.outcome IN ('order_created', 'lines_added', 'duplicate')));
