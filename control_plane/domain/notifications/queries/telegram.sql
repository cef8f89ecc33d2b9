-- The central Telegram bot (telegram_link.py); its link codes are links.sql's.

-- name: offset
SELECT update_offset FROM telegram_bot_state WHERE id = 1;

-- name: save_offset
INSERT INTO telegram_bot_state (id, update_offset) VALUES (1, %(offset)s)
ON CONFLICT (id) DO UPDATE SET update_offset = greatest(telegram_bot_state.update_offset,
                                                        EXCLUDED.update_offset);
