-- Mails to send, written in the transaction of the change that causes them; rendered from
-- `params` with the templates when sent.
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  recipient TEXT NOT NULL,
  locale TEXT NOT NULL,
  params TEXT NOT NULL,
  attachment_name TEXT,
  attachment TEXT,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at TIMESTAMP NOT NULL,
  claimed_by TEXT,
  claimed_until TIMESTAMP,
  last_error TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
-- One row per job and scheduled time: the node that inserts it runs the job.
CREATE TABLE job_runs (
  job TEXT NOT NULL,
  scheduled_at TIMESTAMP NOT NULL,
  node TEXT NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL,
  PRIMARY KEY (job, scheduled_at)
);
