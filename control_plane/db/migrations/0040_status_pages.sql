-- Status pages (an org's public pages: slug, branding, the monitors curated onto them) and share
-- links (a capability URL that shows one monitor read-only).

CREATE TABLE status_pages (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Globally unique: the public URL is /status/{slug}.
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    published boolean NOT NULL DEFAULT false,
    brand_color text CHECK (brand_color ~ '^#[0-9a-fA-F]{6}$'),
    custom_css text NOT NULL DEFAULT '' CHECK (length(custom_css) <= 20000),
    hide_branding boolean NOT NULL DEFAULT false,
    logo bytea CHECK (octet_length(logo) <= 262144),
    logo_content_type text,
    logo_updated_at timestamptz,
    custom_domain text UNIQUE CHECK (length(custom_domain) <= 253),
    domain_token text,
    domain_verified_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_pages_org_idx ON status_pages (org_id, created_at);

CREATE TABLE status_page_components (
    page_id uuid NOT NULL REFERENCES status_pages (id) ON DELETE CASCADE,
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    public_name text CHECK (length(public_name) BETWEEN 1 AND 200),
    public_description text CHECK (length(public_description) <= 1000),
    public_group text CHECK (length(public_group) BETWEEN 1 AND 100),
    sort_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (page_id, target_id)
);
CREATE INDEX status_page_components_target_idx ON status_page_components (target_id);
CREATE INDEX status_page_components_org_idx ON status_page_components (org_id);

-- ``secrets`` holds the token sealed (field ``token``, rewrapped by ``vigil keys rotate``);
-- ``token_hash`` (HMAC with the token key) is what the public path matches on, no decrypt.
CREATE TABLE monitor_shares (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    label text CHECK (length(label) <= 80),
    secrets jsonb NOT NULL DEFAULT '{}'::jsonb,
    token_hash bytea NOT NULL UNIQUE,
    expires_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX monitor_shares_target_idx ON monitor_shares (target_id) WHERE revoked_at IS NULL;
CREATE INDEX monitor_shares_org_idx ON monitor_shares (org_id) WHERE revoked_at IS NULL;
