-- One-tap linking for both managed kinds (issue 12): the Telegram link codes become the link
-- codes of any managed kind (``kind``: the channel kind a code creates), so the WhatsApp flow
-- shares the table, its per-org cap and its single-use consume.
ALTER TABLE telegram_links RENAME TO link_codes;
ALTER INDEX telegram_links_org_idx RENAME TO link_codes_org_idx;
ALTER TABLE link_codes
    ADD COLUMN kind text NOT NULL DEFAULT 'telegram_app'
        CHECK (kind IN ('telegram_app', 'whatsapp_app'));
ALTER TABLE link_codes ALTER COLUMN kind DROP DEFAULT;
