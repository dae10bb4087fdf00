DROP INDEX events_serial;
DROP INDEX events_license;
DROP TABLE activation_counts;
DROP TABLE approvals;
DROP TABLE withdrawals;
DROP TABLE blacklist;
ALTER TABLE licenses DROP COLUMN self_service_used;
ALTER TABLE licenses DROP COLUMN activated_at;
