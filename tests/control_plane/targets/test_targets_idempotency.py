"""Idempotency-Key on bulk, bulk-action and single create: stored in PostgreSQL for 24 h,
keyed by (org, key, body hash); survives a restart of the API; concurrent retries wait."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.core import idempotency
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error

API = "/api/v1/targets"


def http(i: int) -> dict[str, Any]:
    return {"name": f"t{i}", "check": {"type": "http", "url": f"https://e{i}.example.com/"}}


async def count(db_url: str, org_id: Any) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM targets WHERE org_id = %s", (org_id,))
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_retry_same_key_same_body_replays_without_creating(
    owner: Persona, db_url: str
) -> None:
    body = {"targets": [http(i) for i in range(3)]}
    key = {"Idempotency-Key": "k-1"}
    first = await owner.post(f"{API}/bulk", json=body, headers=key)
    assert first.status_code == 201
    again = await owner.post(f"{API}/bulk", json=body, headers=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(db_url, owner.org_id) == 3
    # Same key, another body: executes normally.
    other = await owner.post(f"{API}/bulk", json={"targets": [http(9)]}, headers=key)
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    assert await count(db_url, owner.org_id) == 4
    # No key: executes every time.
    await owner.post(f"{API}/bulk", json={"targets": [http(9)]})
    assert await count(db_url, owner.org_id) == 5


async def test_single_create_and_bulk_action_are_idempotent(owner: Persona, db_url: str) -> None:
    key = {"Idempotency-Key": "create-1"}
    first = await owner.post(API, json=http(1), headers=key)
    again = await owner.post(API, json=http(1), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert await count(db_url, owner.org_id) == 1
    tid = first.json()["id"]
    action = {"ids": [tid], "action": {"type": "tag_add", "tags": ["x"]}}
    one = await owner.post(f"{API}/bulk-action", json=action, headers={"Idempotency-Key": "a"})
    await owner.post(
        f"{API}/bulk-action", json={"ids": [tid], "action": {"type": "tag_remove", "tags": ["x"]}}
    )
    two = await owner.post(f"{API}/bulk-action", json=action, headers={"Idempotency-Key": "a"})
    assert two.json() == one.json() and two.headers["idempotent-replayed"] == "true"
    # The replay did not run again: the tag stays removed.
    assert (await owner.get(f"{API}/{tid}")).json()["tags"] == []


async def test_keys_are_per_org(owner: Persona, outsider: Persona, db_url: str) -> None:
    body = {"targets": [http(1)]}
    key = {"Idempotency-Key": "shared"}
    a = await owner.post(f"{API}/bulk", json=body, headers=key)
    b = await outsider.post(f"{API}/bulk", json=body, headers=key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["items"][0]["id"] != b.json()["items"][0]["id"]
    assert await count(db_url, outsider.org_id) == 1


async def test_retry_after_restart_returns_the_stored_answer(
    owner: Persona, settings: Settings, db_url: str
) -> None:
    body = {"targets": [http(i) for i in range(2)]}
    key = {"Idempotency-Key": "survives"}
    first = await owner.post(f"{API}/bulk", json=body, headers=key)
    assert first.status_code == 201
    # A second API process on the same database: nothing of the first is in its memory.
    async with AsyncTestClient(app=create_app(settings)) as other:
        again = await other.post(f"{API}/bulk", json=body, headers={**owner.headers, **key})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert await count(db_url, owner.org_id) == 2


async def test_concurrent_retries_run_once(owner: Persona, db_url: str) -> None:
    body = {"targets": [http(i) for i in range(200)]}
    key = {"Idempotency-Key": "race"}
    answers = await asyncio.gather(
        *(owner.post(f"{API}/bulk", json=body, headers=key) for _ in range(4))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert sum("idempotent-replayed" in a.headers for a in answers) == 3
    assert await count(db_url, owner.org_id) == 200


async def test_failed_write_is_not_stored(owner: Persona, db_url: str) -> None:
    key = {"Idempotency-Key": "fails"}
    bad = await owner.post(f"{API}/bulk", json={"targets": []}, headers=key)
    assert_error(bad, 400, "BULK_EMPTY")
    assert_error(
        await owner.post(f"{API}/bulk", json={"targets": []}, headers=key), 400, "BULK_EMPTY"
    )


async def test_bad_key_is_400(owner: Persona) -> None:
    resp = await owner.post(
        f"{API}/bulk", json={"targets": [http(1)]}, headers={"Idempotency-Key": "x" * 300}
    )
    assert_error(resp, 400, "INVALID_IDEMPOTENCY_KEY")


async def test_expired_answers_are_purged_and_not_replayed(
    owner: Persona, settings: Settings, db_url: str
) -> None:
    key = {"Idempotency-Key": "old"}
    body = {"targets": [http(1)]}
    await owner.post(f"{API}/bulk", json=body, headers=key)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 s'")
    again = await owner.post(f"{API}/bulk", json=body, headers=key)
    assert "idempotent-replayed" not in again.headers
    assert await count(db_url, owner.org_id) == 2
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 s'")
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(db_url, open=False) as pool:
        assert await idempotency.purge_expired(pool) == 1


async def test_the_answer_commits_with_the_write(owner: Persona, db_url: str) -> None:
    """The answer is stored in the write's transaction: when storing it fails (here a trigger
    refuses this one key, as a crash between the two would), the write is undone with it, and
    the retry runs it once."""
    key = "commits-together"
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION test_refuse_idempotency_key() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN IF NEW.key = 'commits-together' THEN"
            " RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER test_refuse_idempotency_key BEFORE INSERT ON idempotency_keys"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_idempotency_key()"
        )
        try:
            body = {"targets": [http(i) for i in range(3)]}
            try:
                failed = await owner.post(
                    f"{API}/bulk", json=body, headers={"Idempotency-Key": key}
                )
                assert failed.status_code == 500
            except psycopg.errors.RaiseException:
                pass  # the test client re-raises what the app did not handle
            assert await count(db_url, owner.org_id) == 0
        finally:
            await conn.execute("DROP TRIGGER test_refuse_idempotency_key ON idempotency_keys")
    first = await owner.post(f"{API}/bulk", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = await owner.post(f"{API}/bulk", json=body, headers={"Idempotency-Key": key})
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert await count(db_url, owner.org_id) == 3
