-- Link codes of the managed kinds (links.py): minted by an org, consumed by the platform's bot
-- or number, which creates the org's channel.

-- name: count_outstanding
SELECT count(*) AS n FROM link_codes
WHERE org_id = %(org_id)s AND kind = %(kind)s AND consumed_at IS NULL AND expires_at > now();

-- name: insert_link
INSERT INTO link_codes (id, org_id, kind, code_hash, name, expires_at)
VALUES (%(id)s, %(org_id)s, %(kind)s, %(code_hash)s, %(name)s,
        now() + make_interval(secs => %(ttl)s))
RETURNING id, expires_at;

-- name: get_link
SELECT id, expires_at, consumed_at, channel_id FROM link_codes
WHERE org_id = %(org_id)s AND kind = %(kind)s AND id = %(id)s;

-- name: take_link
-- The pending, unexpired link of a code, locked for consuming (the org comes from here only).
SELECT id, org_id, name FROM link_codes
WHERE code_hash = %(code_hash)s AND kind = %(kind)s AND consumed_at IS NULL
  AND expires_at > now()
FOR UPDATE;

-- name: consumed_into
-- The channel a code already created, if any (a redelivered message is not an unknown code).
SELECT c.id, c.config FROM link_codes l JOIN channels c ON c.id = l.channel_id
WHERE l.code_hash = %(code_hash)s AND l.kind = %(kind)s AND l.consumed_at IS NOT NULL;

-- name: consume_link
UPDATE link_codes SET consumed_at = now(), channel_id = %(channel_id)s WHERE id = %(id)s;

-- Platform disables: the chat or number unlinked itself from its side.

-- name: disable_chat
-- The chat left (/stop, or the bot was removed): every channel linked to it is disabled.
UPDATE channels SET enabled = false, updated_at = now(),
       disabled_reason = 'the Telegram chat unlinked this channel (/stop or the bot was removed)'
WHERE kind = 'telegram_app' AND config ->> 'chat_id' = %(chat_id)s AND enabled;

-- name: disable_phone
-- The number sent "stop": every channel bound to it is disabled.
UPDATE channels SET enabled = false, updated_at = now(),
       disabled_reason = 'the WhatsApp number unlinked this channel (it sent stop)'
WHERE kind = 'whatsapp_app' AND config ->> 'phone' = %(phone)s AND enabled;
