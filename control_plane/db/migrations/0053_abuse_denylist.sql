-- Abuse protection (issue 15): the operator's deny-list of domains (a domain and every name
-- under it) and URL patterns (case-insensitive POSIX regular expressions), checked when a
-- target is created, updated or tested, and (core/abuse.py check_url) by outbound channels.
CREATE TABLE abuse_denylist (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('domain', 'url_pattern')),
    value text NOT NULL CHECK (length(value) BETWEEN 1 AND 500),
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT abuse_denylist_kind_value_key UNIQUE (kind, value)
);
