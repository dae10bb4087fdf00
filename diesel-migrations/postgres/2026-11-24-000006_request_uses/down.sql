DROP TABLE request_uses;
