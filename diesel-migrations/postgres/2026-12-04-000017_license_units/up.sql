-- Units used of pay-per-use licenses, as each container's requests report them: the highest
-- count reported, and when the container made the request that reported it (its clock). A
-- later request reporting fewer units means a copy of the container was restored.
CREATE TABLE license_units (
  container_id BIGINT NOT NULL REFERENCES containers(id),
  license_id BIGINT NOT NULL REFERENCES licenses(id),
  used BIGINT NOT NULL,
  made_at TIMESTAMP NOT NULL,
  reported_at TIMESTAMP NOT NULL,
  PRIMARY KEY (container_id, license_id)
);
