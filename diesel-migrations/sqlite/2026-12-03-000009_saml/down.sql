DROP TABLE saml_sessions;
DROP TABLE saml_users;
DROP TABLE saml_assertions;
DROP TABLE saml_requests;
