-- The setting accept_externally_created_entries was stored and never read; it is gone
-- (every entry in a container is signed by a key only this server holds).
UPDATE settings SET body = (body::jsonb - 'accept_externally_created_entries')::text;
