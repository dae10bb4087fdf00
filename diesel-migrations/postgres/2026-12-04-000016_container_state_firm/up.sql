-- The firm whose contact marked a container as manipulated: support's decision about it is
-- carried out by that firm's next request (a container may hold several firms' licenses).
ALTER TABLE containers ADD COLUMN state_firm_id BIGINT REFERENCES firms(id);
