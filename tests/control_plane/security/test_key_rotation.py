"""`vigil keys rotate` and `vigil keys status` as real processes against the test database, and an
unknown key id failing closed through the real agent API."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from litestar.testing import AsyncTestClient
from psycopg.types.json import Jsonb

from control_plane.app import create_app
from control_plane.domain.targets.codec import open_check
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings
from probe_agent.checks import run_lease
from shared.protocol import LeaseResponse
from tests.conftest import Persona
from tests.monitoring_helpers import fetch, make_agent, make_due, make_target
from tests.stack import OPERATOR_TOKEN, ROOT, SEALING_KEYS, settings_env

VIGIL = str(Path(ROOT) / ".venv" / "bin" / "vigil")
PASSWORD = "pw-0d41c2-rotate"
TOKEN = "tok-77ae03-rotate"
API_KEY = "key-3f9b10-rotate"
COOKIE = "session=ck-a4e2d7-rotate"
RETIRED_KEY = b"9" * 32


def vigil(settings: Settings, *args: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(settings_env(settings))
    env.update(env_overrides)
    # A bound, not a timing assertion: a hung CLI must fail the test rather than hang the suite.
    return subprocess.run(
        [VIGIL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def rotate(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`vigil keys rotate` with k2 as the primary key (k1 still configured to read old values)."""
    return vigil(settings, "keys", "rotate", *args, VIGIL_SECRET_PRIMARY="k2")


def status(settings: Settings, **env: str) -> dict[str, tuple[int, str]]:
    """`vigil keys status` as {key id: (values, state)}."""
    done = vigil(settings, "keys", "status", **env)
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.strip().splitlines()
    assert header.split() == ["key", "id", "values", "state"], done.stdout
    out = {}
    for line in lines:
        kid, count, state = line.split(maxsplit=2)
        out[kid] = (int(count), state)
    return out


def only_k2(settings: Settings) -> Settings:
    """The deployment after rotation: k1 retired, k2 the only key."""
    security = dataclasses.replace(
        settings.security, sealing_keys={"k2": SEALING_KEYS["k2"]}, primary_key_id="k2"
    )
    return dataclasses.replace(settings, security=security)


async def secrets_of(db_url: str) -> dict[str, dict[str, str]]:
    rows = await fetch(db_url, "SELECT id::text, secrets FROM targets ORDER BY id")
    return {tid: secrets for tid, secrets in rows}


async def credentialed(owner: Persona, name: str, url: str, **cred: Any) -> dict[str, Any]:
    return await make_target(owner, name=name, check={"type": "http", "url": url, **cred})


# -- rotation ------------------------------------------------------------------------------------


async def test_rotate_rewraps_every_value_under_the_new_primary_once(
    owner: Persona, outsider: Persona, db_url: str, settings: Settings
) -> None:
    made = [
        await credentialed(owner, f"basic-{i}", "https://example.com/", basic_auth=["u", PASSWORD])
        for i in range(3)
    ]
    made += [
        await credentialed(outsider, f"bearer-{i}", "https://example.org/", bearer_token=TOKEN)
        for i in range(2)
    ]
    plain = await make_target(owner, name="no-secrets")
    assert status(settings) == {"k1": (5, "primary"), "k2": (0, "configured")}

    # Batches of two: five sealed rows (the target without secrets is not one) take three.
    done = rotate(settings, "--batch-size", "2")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "targets.secrets: rewrapped 5, already current 0, failed 0" in done.stdout
    assert done.stdout.strip().splitlines()[-1].endswith("rewrapped 5, already current 0, failed 0")

    after = await secrets_of(db_url)
    assert after[plain["id"]] == {}
    sealed_rows = {t["id"]: after[t["id"]] for t in made}
    assert all(v.startswith("v1:k2:") for row in sealed_rows.values() for v in row.values())
    assert status(settings, VIGIL_SECRET_PRIMARY="k2") == {
        "k1": (0, "configured"),
        "k2": (5, "primary"),
    }

    # The specs open with k2 alone: nothing depends on k1 any more.
    sealer = Sealer({"k2": SEALING_KEYS["k2"]}, "k2")
    rows = await fetch(
        db_url, "SELECT org_id, id, spec, secrets FROM targets WHERE secrets <> '{}'"
    )
    opened = [open_check(sealer, *row) for row in rows]
    creds = Counter(
        (getattr(s, "basic_auth", None), getattr(s, "bearer_token", None)) for s in opened
    )
    assert creds == {(("u", PASSWORD), None): 3, (None, TOKEN): 2}

    # Twice is a no-op: nothing rewrapped, not a byte written.
    again = rotate(settings)
    assert again.returncode == 0, again.stderr
    assert "targets.secrets: rewrapped 0, already current 5, failed 0" in again.stdout
    assert await secrets_of(db_url) == after


def test_rotate_refuses_a_primary_that_is_not_configured(settings: Settings) -> None:
    done = vigil(settings, "keys", "rotate", VIGIL_SECRET_PRIMARY="k7")
    assert done.returncode == 2
    assert "VIGIL_SECRET_PRIMARY" in done.stderr


@pytest.fixture
async def guarded_server() -> AsyncIterator[str]:
    """A local HTTP server that answers 200 only to the right credentials, 401 otherwise: at /
    an Authorization header (Basic or Bearer), at /keyed an X-Api-Key and a session cookie."""
    basic = "Basic " + base64.b64encode(f"u:{PASSWORD}".encode()).decode()
    allowed = {basic, f"Bearer {TOKEN}"}

    def answer(ok: bool) -> web.Response:
        return web.Response(status=200 if ok else 401, text="ok" if ok else "no")

    async def handle(request: web.Request) -> web.Response:
        return answer(request.headers.get("Authorization") in allowed)

    async def keyed(request: web.Request) -> web.Response:
        headers = request.headers
        return answer(headers.get("X-Api-Key") == API_KEY and headers.get("Cookie") == COOKIE)

    app = web.Application()
    app.router.add_get("/", handle)
    app.router.add_get("/keyed", keyed)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def test_after_rotation_checks_still_pass_with_only_the_new_key(
    owner: Persona, db_url: str, settings: Settings, guarded_server: str
) -> None:
    targets = [
        await credentialed(owner, "basic", guarded_server, basic_auth=["u", PASSWORD]),
        await credentialed(owner, "bearer", guarded_server, bearer_token=TOKEN),
        # An Authorization header is always secret, like bearer_token.
        await credentialed(
            owner, "auth-header", guarded_server, headers={"Authorization": f"Bearer {TOKEN}"}
        ),
        # A header named secret, a Cookie (always secret) and a plain header.
        await credentialed(
            owner,
            "keyed",
            guarded_server + "keyed",
            headers={"X-Api-Key": API_KEY, "Cookie": COOKIE, "X-Plain": "visible"},
            secret_headers=["x-api-key"],
        ),
    ]
    before = await secrets_of(db_url)
    assert set(before[targets[3]["id"]]) == {"headers.x-api-key", "headers.cookie"}
    assert set(before[targets[2]["id"]]) == {"headers.authorization"}
    done = rotate(settings)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "targets.secrets: rewrapped 5, already current 0, failed 0" in done.stdout
    after = await secrets_of(db_url)
    assert {tid: set(values) for tid, values in after.items()} == {
        tid: set(values) for tid, values in before.items()
    }
    assert all(v.startswith("v1:k2:") for row in after.values() for v in row.values()), after

    await lease_run_and_expect_up(only_k2(settings), db_url, targets)


async def lease_run_and_expect_up(
    settings: Settings, db_url: str, targets: list[dict[str, Any]]
) -> None:
    """Lease every target to a real agent of a control plane on ``settings``, run the checks
    against the guarded server and ingest them: each must come back up, 200."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        operator = Persona(client, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        agent = await make_agent(operator)
        for target in targets:
            await make_due(db_url, target["id"])
        resp = await agent.lease()
        assert resp.status_code == 200, resp.text
        leases = msgspec.json.decode(resp.content, type=LeaseResponse).leases
        assert sorted(lease.target_id for lease in leases) == sorted(t["id"] for t in targets)
        assert "***" not in resp.text, "the agent gets the real values, not the sentinel"
        results = [await run_lease(lease) for lease in leases]
        assert [(r.status, r.status_code) for r in results] == [("up", 200)] * len(targets), [
            r.error for r in results
        ]
        ingested = await agent.ingest(msgspec.to_builtins(results))
        assert ingested.status_code == 200, ingested.text
        assert ingested.json()["accepted"] == len(targets)

    stored = await fetch(db_url, "SELECT status, error_code FROM results")
    assert stored == [("up", None)] * len(targets)


async def test_rotate_seals_secret_header_values_a_row_kept_in_the_clear(
    owner: Persona, db_url: str, settings: Settings, guarded_server: str
) -> None:
    targets = [
        await credentialed(
            owner, "auth-header", guarded_server, headers={"Authorization": f"Bearer {TOKEN}"}
        ),
        await credentialed(
            owner,
            "keyed",
            guarded_server + "keyed",
            headers={"X-Api-Key": API_KEY, "Cookie": COOKIE, "X-Plain": "visible"},
            secret_headers=["x-api-key"],
        ),
    ]
    # Put both rows back in the form of a row written before header values were secret: the
    # values in the spec, in the clear, nothing sealed.
    clear = {
        targets[0]["id"]: {"Authorization": f"Bearer {TOKEN}"},
        targets[1]["id"]: {"X-Api-Key": API_KEY, "Cookie": COOKIE, "X-Plain": "visible"},
    }
    for tid, headers in clear.items():
        await fetch(
            db_url,
            "UPDATE targets SET spec = jsonb_set(spec, '{headers}', %s), secrets = '{}'"
            " WHERE id = %s",
            Jsonb(headers),
            tid,
        )
    assert status(settings) == {"k1": (0, "primary"), "k2": (0, "configured")}

    done = rotate(settings)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "targets.spec: sealed 3 secret header value(s) found in the clear" in done.stdout
    rows = {
        tid: (spec, secrets)
        for tid, spec, secrets in await fetch(db_url, "SELECT id::text, spec, secrets FROM targets")
    }
    assert rows[targets[0]["id"]][0]["headers"] == {"Authorization": "***"}
    assert rows[targets[1]["id"]][0]["headers"] == {
        "X-Api-Key": "***",
        "Cookie": "***",
        "X-Plain": "visible",
    }
    assert {tid: set(secrets) for tid, (_, secrets) in rows.items()} == {
        targets[0]["id"]: {"headers.authorization"},
        targets[1]["id"]: {"headers.x-api-key", "headers.cookie"},
    }
    everything = " ".join(str(row) for row in rows.values())
    assert TOKEN not in everything and API_KEY not in everything and COOKIE not in everything
    assert all(v.startswith("v1:k2:") for _, secrets in rows.values() for v in secrets.values())

    again = rotate(settings)
    assert "targets.spec: sealed 0 secret header value(s)" in again.stdout, again.stdout
    # The agent still gets the real values, opened with the new key alone.
    await lease_run_and_expect_up(only_k2(settings), db_url, targets)


# -- an unknown key id fails closed --------------------------------------------------------------


async def test_a_value_on_an_unknown_key_fails_closed_and_rotation_reports_it(
    owner: Persona, operator: Persona, db_url: str, settings: Settings
) -> None:
    # Created first, so the keyset walk meets the broken row before the healthy one.
    broken = await credentialed(owner, "broken", "https://example.com/", basic_auth=["u", "x"])
    healthy = await credentialed(owner, "healthy", "https://example.com/", bearer_token=TOKEN)
    # Sealed under a key this deployment does not have (e.g. retired before its rows were
    # rotated), correctly bound to its row.
    retired = Sealer({"k9": RETIRED_KEY}, "k9")
    value = retired.seal(
        msgspec.json.encode(["u", PASSWORD]).decode(),
        Sealer.binding(owner.org_id, uuid.UUID(broken["id"]), "basic_auth"),
    )
    await fetch(
        db_url,
        "UPDATE targets SET secrets = %s WHERE id = %s",
        Jsonb({"basic_auth": value}),
        uuid.UUID(broken["id"]),
    )

    agent = await make_agent(operator)
    due = {t["id"]: await make_due(db_url, t["id"]) for t in (broken, healthy)}
    resp = await agent.lease()
    assert resp.status_code == 200, resp.text
    leases = resp.json()["leases"]
    assert [lease["target_id"] for lease in leases] == [healthy["id"]]
    assert PASSWORD not in resp.text
    stored = await fetch(
        db_url,
        "SELECT target_id::text, scheduled_at, status, error_code, error FROM results",
    )
    assert len(stored) == 1, stored
    target_id, scheduled_at, result_status, code, error = stored[0]
    assert (target_id, scheduled_at) == (broken["id"], due[broken["id"]])
    assert (result_status, code) == ("error", "SECRET_UNAVAILABLE")
    assert error and PASSWORD not in error

    done = rotate(settings)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "targets.secrets: rewrapped 1, already current 0, failed 1" in done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert f"id={broken['id']}" in failed[0]
    assert "field=basic_auth" in failed[0] and "key_id=k9" in failed[0]
    assert "could not be rewrapped" in done.stderr

    # The run carried on past the failure; the broken value is left exactly as it was.
    after = await secrets_of(db_url)
    assert after[broken["id"]] == {"basic_auth": value}
    assert after[healthy["id"]]["bearer_token"].startswith("v1:k2:")
    assert status(settings, VIGIL_SECRET_PRIMARY="k2") == {
        "k1": (0, "configured"),
        "k2": (1, "primary"),
        "k9": (1, "NOT CONFIGURED"),
    }
    # Still failing on the next run: the exit code stays non-zero until the key is configured.
    assert rotate(settings).returncode == 1


async def test_a_credential_moved_to_another_orgs_row_fails_closed_at_lease(
    owner: Persona, outsider: Persona, operator: Persona, db_url: str
) -> None:
    # The same secret fields in both orgs, so the moved values carry the right field names.
    theirs = await credentialed(
        outsider,
        "theirs",
        "https://example.org/",
        headers={"X-Api-Key": API_KEY},
        secret_headers=["X-Api-Key"],
        bearer_token=TOKEN,
    )
    mine = await credentialed(
        owner,
        "mine",
        "https://example.com/",
        headers={"X-Api-Key": "mine-key"},
        secret_headers=["x-api-key"],
        bearer_token="mine-token",
    )
    retired_row = await credentialed(
        owner, "retired", "https://example.com/", headers={"Authorization": "Basic c2VjcmV0"}
    )
    healthy = await credentialed(
        owner, "healthy", "https://example.com/", headers={"Cookie": COOKIE}
    )
    # Another org's ciphertext copied into this org's row, as an attacker with SQL access would.
    await fetch(
        db_url,
        "UPDATE targets SET secrets = (SELECT secrets FROM targets WHERE id = %s) WHERE id = %s",
        uuid.UUID(theirs["id"]),
        uuid.UUID(mine["id"]),
    )
    # A secret header sealed under a key this deployment does not have, correctly bound.
    value = Sealer({"k9": RETIRED_KEY}, "k9").seal(
        msgspec.json.encode("Basic c2VjcmV0").decode(),
        Sealer.binding(owner.org_id, uuid.UUID(retired_row["id"]), "headers.authorization"),
    )
    await fetch(
        db_url,
        "UPDATE targets SET secrets = %s WHERE id = %s",
        Jsonb({"headers.authorization": value}),
        uuid.UUID(retired_row["id"]),
    )

    agent = await make_agent(operator)
    due = {t["id"]: await make_due(db_url, t["id"]) for t in (theirs, mine, retired_row, healthy)}
    resp = await agent.lease()
    assert resp.status_code == 200, resp.text
    leases = {lease["target_id"]: lease for lease in resp.json()["leases"]}
    assert set(leases) == {theirs["id"], healthy["id"]}
    # The rows that open get their real values; nothing of theirs reaches another org's slot.
    assert leases[theirs["id"]]["check"]["headers"] == {"X-Api-Key": API_KEY}
    assert leases[theirs["id"]]["check"]["bearer_token"] == TOKEN
    assert leases[healthy["id"]]["check"]["headers"] == {"Cookie": COOKIE}
    assert "***" not in resp.text

    stored = await fetch(
        db_url,
        "SELECT target_id::text, scheduled_at, status, error_code, error FROM results"
        " ORDER BY target_id",
    )
    assert sorted((t, at, st, code) for t, at, st, code, _ in stored) == sorted(
        (tid, due[tid], "error", "SECRET_UNAVAILABLE") for tid in (mine["id"], retired_row["id"])
    )
    for *_, error in stored:
        assert error and API_KEY not in error and TOKEN not in error
