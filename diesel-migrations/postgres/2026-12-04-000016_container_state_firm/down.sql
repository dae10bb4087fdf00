ALTER TABLE containers DROP COLUMN state_firm_id;
