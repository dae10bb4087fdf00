-- Customers are known by their external id within a scope: '' for the vendor's own (the JSON
-- API, SOAP, the CLI, the portal), a connector's source for the customers its shop or ERP
-- sends, so that a shop's customer 1001 and the ERP's customer 1001 stay two customers.
ALTER TABLE customers ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE customers DROP CONSTRAINT customers_external_id_key;
ALTER TABLE customers ADD CONSTRAINT customers_scope_external_id_key UNIQUE (scope, external_id);
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
