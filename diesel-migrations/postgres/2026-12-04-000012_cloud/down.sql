DROP TABLE cloud_borrows;
DROP TABLE cloud_use_days;
DROP TABLE cloud_seats;
DROP TABLE cloud_tokens;
DROP TABLE cloud_credentials;
DROP TABLE cloud_authorities;
