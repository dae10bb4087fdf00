DROP TABLE portal_registrations;
