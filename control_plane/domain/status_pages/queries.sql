-- Status pages of an org and the monitors curated onto them.

-- name: count_org_pages
SELECT count(*) AS n FROM status_pages WHERE org_id = %(org_id)s;

-- name: count_org_components
-- Distinct monitors of the org on any of its pages (max_public_components).
SELECT count(DISTINCT target_id) AS n FROM status_page_components WHERE org_id = %(org_id)s;

-- name: target_on_any_page
SELECT 1 AS ok FROM status_page_components
WHERE org_id = %(org_id)s AND target_id = %(target_id)s LIMIT 1;

-- name: insert_page
INSERT INTO status_pages (id, org_id, name, slug, description, published, brand_color,
                          custom_css, hide_branding)
VALUES (%(id)s, %(org_id)s, %(name)s, %(slug)s, %(description)s, %(published)s,
        %(brand_color)s, %(custom_css)s, %(hide_branding)s);

-- name: update_page
UPDATE status_pages
SET name = %(name)s, slug = %(slug)s, description = %(description)s,
    published = %(published)s, brand_color = %(brand_color)s, custom_css = %(custom_css)s,
    hide_branding = %(hide_branding)s, updated_at = clock_timestamp()
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: touch_page
-- A change to a page's components or logo changes what it publishes.
UPDATE status_pages SET updated_at = clock_timestamp()
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: page_fields
-- One page of the org, without the logo's bytes.
SELECT p.id, p.name, p.slug, p.description, p.published, p.brand_color, p.custom_css,
       p.hide_branding, p.logo_updated_at, p.created_at, p.updated_at, p.custom_domain,
       p.domain_verified_at,
       (SELECT count(*) FROM status_page_components c WHERE c.page_id = p.id) AS component_count
FROM status_pages p
WHERE p.org_id = %(org_id)s AND p.id = %(id)s;

-- name: lock_page
SELECT id FROM status_pages WHERE org_id = %(org_id)s AND id = %(id)s FOR UPDATE;

-- name: list_pages
SELECT p.id, p.name, p.slug, p.description, p.published, p.brand_color, p.custom_css,
       p.hide_branding, p.logo_updated_at, p.created_at, p.updated_at, p.custom_domain,
       p.domain_verified_at,
       (SELECT count(*) FROM status_page_components c WHERE c.page_id = p.id) AS component_count
FROM status_pages p
WHERE p.org_id = %(org_id)s
ORDER BY p.created_at, p.id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_pages
SELECT count(*) AS total FROM status_pages WHERE org_id = %(org_id)s;

-- name: delete_page
DELETE FROM status_pages WHERE org_id = %(org_id)s AND id = %(id)s RETURNING id;

-- name: set_logo
UPDATE status_pages
SET logo = %(logo)s, logo_content_type = %(content_type)s,
    logo_updated_at = CASE WHEN %(logo)s::bytea IS NULL THEN NULL ELSE clock_timestamp() END,
    updated_at = clock_timestamp()
WHERE org_id = %(org_id)s AND id = %(id)s
RETURNING id;

-- name: list_components
SELECT c.target_id, t.name AS target_name, c.public_name, c.public_description, c.public_group,
       c.sort_order
FROM status_page_components c JOIN targets t ON t.id = c.target_id
WHERE c.page_id = %(page_id)s AND c.org_id = %(org_id)s
ORDER BY c.sort_order, c.created_at, c.target_id;

-- name: get_component
SELECT c.target_id, t.name AS target_name, c.public_name, c.public_description, c.public_group,
       c.sort_order
FROM status_page_components c JOIN targets t ON t.id = c.target_id
WHERE c.page_id = %(page_id)s AND c.org_id = %(org_id)s AND c.target_id = %(target_id)s;

-- name: next_sort_order
SELECT coalesce(max(sort_order) + 1, 0) AS n FROM status_page_components
WHERE page_id = %(page_id)s;

-- name: insert_component
INSERT INTO status_page_components (page_id, target_id, org_id, public_name, public_description,
                                    public_group, sort_order)
VALUES (%(page_id)s, %(target_id)s, %(org_id)s, %(public_name)s, %(public_description)s,
        %(public_group)s, %(sort_order)s)
ON CONFLICT (page_id, target_id) DO NOTHING
RETURNING target_id;

-- name: update_component
UPDATE status_page_components
SET public_name = %(public_name)s, public_description = %(public_description)s,
    public_group = %(public_group)s, sort_order = %(sort_order)s
WHERE page_id = %(page_id)s AND org_id = %(org_id)s AND target_id = %(target_id)s;

-- name: delete_component
DELETE FROM status_page_components
WHERE page_id = %(page_id)s AND org_id = %(org_id)s AND target_id = %(target_id)s
RETURNING target_id;

-- name: reorder_components
UPDATE status_page_components c
SET sort_order = o.ord - 1
FROM unnest(%(target_ids)s::uuid[]) WITH ORDINALITY AS o(target_id, ord)
WHERE c.page_id = %(page_id)s AND c.org_id = %(org_id)s AND c.target_id = o.target_id;

-- name: claim_domain
UPDATE status_pages
SET custom_domain = %(domain)s, domain_token = %(token)s, domain_verified_at = NULL,
    updated_at = clock_timestamp()
WHERE org_id = %(org_id)s AND id = %(id)s
RETURNING custom_domain, domain_token, domain_verified_at;

-- name: get_domain
SELECT custom_domain, domain_token, domain_verified_at FROM status_pages
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: domain_verified
UPDATE status_pages SET domain_verified_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE org_id = %(org_id)s AND id = %(id)s AND custom_domain = %(domain)s
RETURNING custom_domain, domain_token, domain_verified_at;

-- name: release_domain
UPDATE status_pages
SET custom_domain = NULL, domain_token = NULL, domain_verified_at = NULL,
    updated_at = clock_timestamp()
WHERE org_id = %(org_id)s AND id = %(id)s
RETURNING id;
