DROP TABLE writebacks;
DROP TABLE notifications;
