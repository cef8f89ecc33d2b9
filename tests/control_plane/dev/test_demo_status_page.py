"""`vigil dev`'s demo status page: published, holding the demo org's targets, idempotent."""

from __future__ import annotations

from control_plane.dev.seed import ensure_demo_status_page
from tests.conftest import Persona
from tests.control_plane.status_pages.helpers import make_target


async def test_demo_page_shows_the_demo_orgs_targets(
    owner: Persona, outsider: Persona, anon: Persona, db_url: str
) -> None:
    await make_target(owner, "first")
    assert await ensure_demo_status_page(db_url, str(owner.org_id)) == "/status/demo"
    await make_target(owner, "second")
    assert await ensure_demo_status_page(db_url, str(owner.org_id)) == "/status/demo"
    body = (await anon.get("/api/public/v1/pages/demo/status")).json()
    assert [c["name"] for c in body["components"]] == ["first", "second"]
    # Another org cannot take it over.
    assert await ensure_demo_status_page(db_url, str(outsider.org_id)) is None
