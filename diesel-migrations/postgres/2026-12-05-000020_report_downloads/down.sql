DROP TABLE report_downloads;
