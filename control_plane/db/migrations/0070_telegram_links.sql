-- Telegram one-tap linking (issue 12): a single-use code minted by an org (only its hash is
-- kept), consumed when the central bot receives it, which creates the org's telegram_app
-- channel. The bot's getUpdates offset is kept so an update is handled once.
CREATE TABLE telegram_links (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL UNIQUE,
    name text CHECK (length(name) <= 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz,
    channel_id uuid REFERENCES channels (id) ON DELETE SET NULL
);
CREATE INDEX telegram_links_org_idx ON telegram_links (org_id, expires_at);

CREATE TABLE telegram_bot_state (
    id integer PRIMARY KEY CHECK (id = 1),
    update_offset bigint NOT NULL DEFAULT 0
);
