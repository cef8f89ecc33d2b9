-- Telegram one-tap linking (telegram_link.py).

-- name: count_outstanding
SELECT count(*) AS n FROM telegram_links
WHERE org_id = %(org_id)s AND consumed_at IS NULL AND expires_at > now();

-- name: insert_link
INSERT INTO telegram_links (id, org_id, code_hash, name, expires_at)
VALUES (%(id)s, %(org_id)s, %(code_hash)s, %(name)s, now() + make_interval(secs => %(ttl)s))
RETURNING id, expires_at;

-- name: get_link
SELECT id, expires_at, consumed_at, channel_id FROM telegram_links
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: take_link
-- The pending, unexpired link of a code, locked for consuming (the org comes from here only).
SELECT id, org_id, name FROM telegram_links
WHERE code_hash = %(code_hash)s AND consumed_at IS NULL AND expires_at > now()
FOR UPDATE;

-- name: consume_link
UPDATE telegram_links SET consumed_at = now(), channel_id = %(channel_id)s WHERE id = %(id)s;

-- name: offset
SELECT update_offset FROM telegram_bot_state WHERE id = 1;

-- name: save_offset
INSERT INTO telegram_bot_state (id, update_offset) VALUES (1, %(offset)s)
ON CONFLICT (id) DO UPDATE SET update_offset = greatest(telegram_bot_state.update_offset,
                                                        EXCLUDED.update_offset);

-- name: disable_chat
-- The chat left (/stop, or the bot was removed): every channel linked to it is disabled.
UPDATE channels SET enabled = false, updated_at = now(),
       disabled_reason = 'the Telegram chat unlinked this channel (/stop or the bot was removed)'
WHERE kind = 'telegram_app' AND config ->> 'chat_id' = %(chat_id)s AND enabled;
