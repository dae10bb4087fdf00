UPDATE settings SET body = jsonb_set(body::jsonb, '{accept_externally_created_entries}', 'false')::text;
