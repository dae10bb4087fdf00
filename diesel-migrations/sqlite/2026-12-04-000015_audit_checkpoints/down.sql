DROP TABLE audit_checkpoints;
DROP TABLE audit_key;
