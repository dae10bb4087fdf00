DROP TABLE portal_look;
DROP INDEX events_action_at;
DROP INDEX orders_ticket_id;
DROP INDEX orders_customer_id;
DROP INDEX orders_erp_order_id;
DROP TABLE admin_sessions;
