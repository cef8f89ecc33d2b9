"""`vigil org create` and `vigil token create` as real processes against the test database; the
printed token works against the API."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import assert_error
from tests.stack import ROOT, settings_env

VIGIL = str(Path(ROOT) / ".venv" / "bin" / "vigil")


def run_vigil(settings: Settings | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    if settings is not None:
        env.update(settings_env(settings))
    # A bound, not a timing assertion: a hung CLI must fail the test rather than hang the suite.
    return subprocess.run(
        [VIGIL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def last_line(out: str) -> str:
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert lines, "the command printed nothing"
    return lines[-1].strip()


def create_org(settings: Settings, name: str) -> uuid.UUID:
    done = run_vigil(settings, "org", "create", name)
    assert done.returncode == 0, done.stderr
    return uuid.UUID(last_line(done.stdout))


def create_token(settings: Settings, org_id: uuid.UUID, *extra: str) -> str:
    done = run_vigil(settings, "token", "create", "--org", str(org_id), *extra)
    assert done.returncode == 0, done.stderr
    return last_line(done.stdout)


def test_org_create_prints_a_new_uuidv7_org_id(settings: Settings, db_url: str) -> None:
    org_id = create_org(settings, "Acme Corp")
    assert org_id.version == 7
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT name FROM orgs WHERE id = %s", (org_id,)).fetchone()
    assert row == ("Acme Corp",)


async def test_token_create_prints_a_token_that_works_against_the_api(
    settings: Settings, db_url: str
) -> None:
    org_id = create_org(settings, "Acme")
    token = create_token(settings, org_id, "--name", "ci")
    assert token.startswith("vgl_")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT name, prefix, hash FROM api_tokens WHERE org_id = %s", (org_id,)
        ).fetchall()
    assert len(rows) == 1
    name, prefix, digest = rows[0]
    assert name == "ci"
    # Shown once: only a short prefix and a keyed hash are stored.
    assert token.startswith(prefix) and len(prefix) < len(token)
    assert token.encode() not in bytes(digest)

    headers = {"Authorization": f"Bearer {token}"}
    async with AsyncTestClient(app=create_app(settings)) as client:
        listed = await client.get("/api/v1/targets", headers=headers)
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 0
        created = await client.post(
            "/api/v1/targets",
            json={"name": "cli", "check": {"type": "tcp", "host": "db.example.com", "port": 5432}},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        with psycopg.connect(db_url) as conn:
            owner = conn.execute(
                "SELECT org_id FROM targets WHERE id = %s", (created.json()["id"],)
            ).fetchone()
        assert owner == (org_id,)
        # A near miss of the printed token is refused.
        bad = {"Authorization": f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}"}
        assert_error(await client.get("/api/v1/targets", headers=bad), 401, "UNAUTHORIZED")


async def test_tokens_of_two_orgs_see_only_their_own_targets(settings: Settings) -> None:
    a = create_token(settings, create_org(settings, "A"))
    b = create_token(settings, create_org(settings, "B"))
    body = {"name": "x", "check": {"type": "tcp", "host": "db.example.com", "port": 1}}
    async with AsyncTestClient(app=create_app(settings)) as client:
        made = await client.post(
            "/api/v1/targets", json=body, headers={"Authorization": f"Bearer {a}"}
        )
        assert made.status_code == 201
        resp = await client.get(
            f"/api/v1/targets/{made.json()['id']}", headers={"Authorization": f"Bearer {b}"}
        )
        assert_error(resp, 404, "TARGET_NOT_FOUND")


def test_each_token_create_mints_a_distinct_token(settings: Settings) -> None:
    org_id = create_org(settings, "Acme")
    assert create_token(settings, org_id) != create_token(settings, org_id)


def test_token_create_refuses_a_malformed_org_id(settings: Settings) -> None:
    done = run_vigil(settings, "token", "create", "--org", "not-an-id")
    assert done.returncode == 2
    assert "not an org id" in done.stderr
    assert "vgl_" not in done.stdout


def test_token_create_refuses_an_unknown_org(settings: Settings, db_url: str) -> None:
    missing = uuid.uuid4()
    done = run_vigil(settings, "token", "create", "--org", str(missing))
    assert done.returncode == 1
    assert f"org {missing} does not exist" in done.stderr
    assert "vgl_" not in done.stdout
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM api_tokens").fetchone()
    assert row == (0,)


def test_commands_without_configuration_fail_with_a_message() -> None:
    done = run_vigil(None, "org", "create", "Acme")
    assert done.returncode == 2
    assert "configuration error" in done.stderr
    assert "VIGIL_" in done.stderr


def test_usage_errors_exit_non_zero(settings: Settings) -> None:
    assert run_vigil(settings, "org", "create").returncode == 2
    assert run_vigil(settings, "token", "create").returncode == 2


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "bad\nname"])
def test_org_create_refuses_a_bad_name(settings: Settings, name: str) -> None:
    done = run_vigil(settings, "org", "create", name)
    assert done.returncode == 2, done
    assert "org name" in done.stderr
    assert "Traceback" not in done.stderr


async def test_token_revoke_stops_the_token_at_once_and_list_shows_it(settings: Settings) -> None:
    org_id = create_org(settings, "Acme")
    keep, doomed = (
        create_token(settings, org_id, "--name", "keep"),
        create_token(settings, org_id, "--name", "ci"),
    )
    listed = run_vigil(settings, "token", "list", "--org", str(org_id))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and all(" live" in line for line in lines), lines
    # Never the token itself: its id, the stored prefix and the name.
    assert keep not in listed.stdout and doomed not in listed.stdout
    token_id = next(line.split()[0] for line in lines if " ci " in line)

    async with AsyncTestClient(app=create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {doomed}"}
        assert (await client.get("/api/v1/targets", headers=headers)).status_code == 200
        done = run_vigil(settings, "token", "revoke", "--id", token_id)
        assert done.returncode == 0, done.stderr
        assert_error(await client.get("/api/v1/targets", headers=headers), 401, "UNAUTHORIZED")
        # The other token of the org keeps working.
        other = {"Authorization": f"Bearer {keep}"}
        assert (await client.get("/api/v1/targets", headers=other)).status_code == 200
    listed = run_vigil(settings, "token", "list", "--org", str(org_id))
    assert sum("revoked" in line for line in listed.stdout.splitlines()) == 1
    # Revoking again is harmless; an unknown or malformed id is a clear error.
    assert run_vigil(settings, "token", "revoke", "--id", token_id).returncode == 0
    missing = run_vigil(settings, "token", "revoke", "--id", str(uuid.uuid4()))
    assert missing.returncode == 1 and "no API token" in missing.stderr
    bad = run_vigil(settings, "token", "revoke", "--id", "vgl_nope")
    assert bad.returncode == 2 and "is not a token id" in bad.stderr
