DROP TABLE license_units;
