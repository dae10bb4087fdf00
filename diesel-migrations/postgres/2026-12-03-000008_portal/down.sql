DROP TABLE portal_login_failures;
DROP TABLE portal_sessions;
