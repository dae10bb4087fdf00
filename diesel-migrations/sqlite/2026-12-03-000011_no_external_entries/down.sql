UPDATE settings SET body = json_set(body, '$.accept_externally_created_entries', json('false'));
