-- A report too large to mail is mailed as a link: the link's token (its SHA-256 here, the
-- token only in the mail), which report of which time, which rows (a firm code's, a
-- customer's), and until when it may be downloaded.
CREATE TABLE report_downloads (
  token_hash TEXT PRIMARY KEY,
  report TEXT NOT NULL,
  params TEXT NOT NULL,
  report_at TIMESTAMP NOT NULL,
  rows_of TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX report_downloads_expires ON report_downloads (expires_at);
