"""/api/v1/maintenance, the ``in_maintenance`` mark the engine sets inside a window and the sweep
clears after it, and uptime without maintenance time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from litestar import Litestar

from control_plane.domain.incidents.jobs import release_maintenance
from tests.conftest import Persona, assert_error
from tests.control_plane.incidents.test_incidents import incidents
from tests.control_plane.incidents.test_lifecycle import one_region_target
from tests.monitoring_helpers import make_target


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def window_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "DB upgrade",
        "description": "PostgreSQL 17",
        "starts_at": iso(timedelta(hours=-1)),
        "ends_at": iso(timedelta(hours=1)),
    }
    body.update(fields)
    return body


async def create(owner: Persona, **fields: Any) -> dict[str, Any]:
    resp = await owner.post("/api/v1/maintenance", json=window_body(**fields))
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"/api/v1/maintenance/{resp.json()['id']}"
    window: dict[str, Any] = resp.json()
    return window


async def move_into_past(db_url: str, window_id: str) -> None:
    """What time does to a window (the API refuses to schedule one in the past)."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE maintenance_windows SET starts_at = now() - interval '3 hours',"
            " ends_at = now() - interval '2 hours' WHERE id = %s",
            (uuid.UUID(window_id),),
        )


async def test_create_get_list_patch_delete(owner: Persona, db_url: str) -> None:
    target = await make_target(owner)
    org_wide = await create(owner)
    assert org_wide["all_targets"] is True and org_wide["target_ids"] == []
    assert org_wide["status"] == "active" and org_wide["write_source"] == "api"
    one = await create(
        owner,
        title="Edge swap",
        target_ids=[target["id"], target["id"]],
        starts_at=iso(timedelta(days=1)),
        ends_at=iso(timedelta(days=1, hours=2)),
    )
    assert one["all_targets"] is False and one["target_ids"] == [target["id"]]
    assert one["status"] == "upcoming" and one["description"] == "PostgreSQL 17"
    ended = await create(owner, title="Old")
    await move_into_past(db_url, ended["id"])

    async def listed(query: str = "") -> list[str]:
        resp = await owner.get(f"/api/v1/maintenance{query}")
        assert resp.status_code == 200, resp.text
        return [w["id"] for w in resp.json()["items"]]

    assert await listed("?status=active") == [org_wide["id"]]
    assert await listed("?status=upcoming") == [one["id"]]
    assert await listed("?status=past") == [ended["id"]]
    assert sorted(await listed()) == sorted([org_wide["id"], one["id"], ended["id"]])
    assert sorted(await listed("?status=all")) == sorted(await listed())
    page = (await owner.get("/api/v1/maintenance?limit=1")).json()
    assert page["total"] == 3 and len(page["items"]) == 1

    got = (await owner.get(f"/api/v1/maintenance/{one['id']}")).json()
    assert got == one

    url = f"/api/v1/maintenance/{one['id']}"
    resp = await owner.patch(
        url, json={"title": "Edge swap v2"}, headers={"User-Agent": "Terraform/1.9"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["title"] == "Edge swap v2" and resp.json()["write_source"] == "terraform"
    assert resp.json()["target_ids"] == [target["id"]]
    resp = await owner.patch(url, json={"target_ids": None}, headers={"X-Vigil-Client": "ui"})
    assert resp.json()["all_targets"] is True and resp.json()["write_source"] == "ui"
    resp = await owner.patch(url, json={"target_ids": [target["id"]]})
    assert resp.json()["all_targets"] is False and resp.json()["target_ids"] == [target["id"]]
    new_end = iso(timedelta(days=1, hours=5))
    resp = await owner.patch(url, json={"ends_at": new_end})
    assert datetime.fromisoformat(resp.json()["ends_at"]) == datetime.fromisoformat(new_end)

    # A window that has ended is history: no edits.
    assert_error(
        await owner.patch(f"/api/v1/maintenance/{ended['id']}", json={"title": "x"}),
        409,
        "MAINTENANCE_ENDED",
    )

    resp = await owner.delete(url)
    assert resp.status_code == 204, resp.text
    assert_error(await owner.get(url), 404, "MAINTENANCE_NOT_FOUND")
    assert_error(await owner.delete(url), 404, "MAINTENANCE_NOT_FOUND")


async def test_bad_input(owner: Persona, outsider: Persona) -> None:
    foreign = await make_target(outsider)
    same = iso(timedelta(hours=1))
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        (
            window_body(starts_at=iso(timedelta(hours=2)), ends_at=iso(timedelta(hours=1))),
            400,
            "BAD_TIME_RANGE",
            "/ends_at",
        ),
        (
            window_body(starts_at=same, ends_at=same),
            400,
            "BAD_TIME_RANGE",
            "/ends_at",
        ),
        (
            window_body(starts_at=iso(timedelta(hours=-3)), ends_at=iso(timedelta(hours=-2))),
            400,
            "BAD_TIME_RANGE",
            "/ends_at",
        ),
        (window_body(starts_at="2030-01-01T00:00:00"), 400, "INVALID_TIME", "/starts_at"),
        (window_body(ends_at="tomorrow"), 400, "INVALID_TIME", "/ends_at"),
        (window_body(ends_at=1893456000), 400, "INVALID_TIME", "/ends_at"),
        (window_body(title=""), 400, "INVALID_TITLE", "/title"),
        (window_body(title="x" * 201), 400, "INVALID_TITLE", "/title"),
        (window_body(description="x" * 5001), 400, "INVALID_DESCRIPTION", "/description"),
        (window_body(target_ids=["nope"]), 400, "INVALID_TARGET_IDS", "/target_ids/0"),
        (
            window_body(target_ids=[str(uuid.uuid4())]),
            400,
            "INVALID_TARGET_IDS",
            "/target_ids/0",
        ),
        # Another org's target is no target of ours.
        (window_body(target_ids=[foreign["id"]]), 400, "INVALID_TARGET_IDS", "/target_ids/0"),
        (window_body(write_source="ui"), 400, "UNKNOWN_FIELD", "/write_source"),
        ({"title": "x", "ends_at": iso(timedelta(hours=1))}, 400, "MISSING_FIELD", "/starts_at"),
    ]
    for body, status, code, field in cases:
        assert_error(await owner.post("/api/v1/maintenance", json=body), status, code, field)
    assert (await owner.get("/api/v1/maintenance")).json()["total"] == 0

    window = await create(owner)
    url = f"/api/v1/maintenance/{window['id']}"
    # Moving the end before the (unchanged) start.
    assert_error(
        await owner.patch(url, json={"ends_at": iso(timedelta(hours=-2))}),
        400,
        "BAD_TIME_RANGE",
        "/ends_at",
    )
    assert_error(
        await owner.patch(url, json={"starts_at": iso(timedelta(hours=3))}),
        400,
        "BAD_TIME_RANGE",
    )
    assert_error(await owner.patch(url, json={"title": None}), 400, "INVALID_TITLE", "/title")
    assert_error(
        await owner.patch(url, json={"target_ids": [foreign["id"]]}),
        400,
        "INVALID_TARGET_IDS",
        "/target_ids/0",
    )
    assert_error(await owner.get("/api/v1/maintenance?status=soon"), 400, "INVALID_QUERY_PARAM")
    unchanged = (await owner.get(url)).json()
    assert unchanged == window


async def test_another_orgs_window_is_404(owner: Persona, outsider: Persona) -> None:
    window = await create(owner)
    url = f"/api/v1/maintenance/{window['id']}"
    for resp in (
        await outsider.get(url),
        await outsider.patch(url, json={"title": "mine"}),
        await outsider.delete(url),
        await owner.get("/api/v1/maintenance/not-a-uuid"),
    ):
        assert_error(resp, 404, "MAINTENANCE_NOT_FOUND")
    assert (await outsider.get("/api/v1/maintenance")).json()["items"] == []
    assert (await owner.get(url)).json() == window


async def test_incident_opened_inside_a_window_is_held_until_it_ends(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    other = await make_target(owner)
    # A window over another target only does not cover this one.
    await create(owner, target_ids=[other["id"]])
    window = await create(owner, target_ids=[target["id"]])
    await probe.round({agent: "down"})
    await probe.round({agent: "down"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is True and inc["state"] == "open"
    ctx = {"resources": app.state.resources}
    # While the window lasts, the sweep leaves the mark.
    assert await release_maintenance(ctx) == 0
    await move_into_past(db_url, window["id"])
    assert await release_maintenance(ctx) == 1
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is False
    assert await release_maintenance(ctx) == 0


async def test_org_wide_window_marks_and_cancel_releases(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    window = await create(owner)
    await probe.round({agent: "down"})
    await probe.round({agent: "down"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is True
    resp = await owner.delete(f"/api/v1/maintenance/{window['id']}")
    assert resp.status_code == 204
    assert await release_maintenance({"resources": app.state.resources}) == 1
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is False


async def test_incident_outside_any_window_is_not_marked(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    # Upcoming, not active.
    await create(owner, starts_at=iso(timedelta(hours=1)), ends_at=iso(timedelta(hours=2)))
    await probe.round({agent: "down"})
    await probe.round({agent: "down"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is False


async def test_uptime_can_leave_out_maintenance_time(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    for status in ("up", "up", "down", "down"):
        await probe.round({agent: status})
    url = f"/api/v1/targets/{target['id']}/uptime"
    full = (await owner.get(url)).json()
    assert full["total"] == 4 and full["down"] == 2
    # No window over this target (one over another target does not count): the same figures.
    other = await make_target(owner)
    await create(owner, target_ids=[other["id"]], starts_at=iso(timedelta(hours=-2)))
    assert (await owner.get(f"{url}?exclude_maintenance=true")).json() == full
    # A window over the whole history (results are replayed about 50 minutes ago).
    await create(owner, target_ids=[target["id"]], starts_at=iso(timedelta(hours=-2)))
    excluded = (await owner.get(f"{url}?exclude_maintenance=true")).json()
    assert excluded["total"] == 0 and excluded["down"] == 0 and excluded["uptime_pct"] is None
    assert (await owner.get(url)).json() == full


async def test_a_window_edited_off_the_target_releases_its_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    other = await make_target(owner)
    window = await create(owner, target_ids=[target["id"]])
    await probe.round({agent: "down"})
    await probe.round({agent: "down"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is True
    resp = await owner.patch(
        f"/api/v1/maintenance/{window['id']}", json={"target_ids": [other["id"]]}
    )
    assert resp.status_code == 200, resp.text
    assert await release_maintenance({"resources": app.state.resources}) == 1
    (inc,) = await incidents(owner, target["id"])
    assert inc["in_maintenance"] is False
