"""Fixtures: a real stack per session, a fresh database per test, and personas.

Personas: ``owner`` (org A's API client), ``outsider`` (org B's API client), ``operator`` (the
instance admin) and ``anon`` (no credentials).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.core.observability import Metrics
from control_plane.core.observability.request_context import RequestContext
from control_plane.domain.orgs.service import create_org, create_token
from control_plane.settings import Settings
from tests.stack import OPERATOR_TOKEN, TOKEN_KEY, Stack, test_settings

# Longest tests first. ``tests/durations.json`` holds the wall time (setup + call + teardown, in
# seconds) of every test that took a second or more in a ``make test`` run; collection puts those
# first, longest first, and leaves every other test in its usual order. With ``-n 3`` and
# ``--maxschedchunk 1`` (pyproject's addopts), xdist hands out one test at a time in that order,
# so the run does not end with one worker alone on a long test it was handed late. The order
# only depends on the committed file: every worker collects the same list, as xdist requires.
# Regenerate after adding or speeding up long tests:
#   .venv/bin/pytest -n 3 --record-durations tests/durations.json
DURATIONS = Path(__file__).with_name("durations.json")
RECORD_FLOOR_SECS = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        metavar="PATH",
        default=None,
        help="write each test's wall time (setup + call + teardown) to PATH as JSON, for tests "
        f"of {RECORD_FLOOR_SECS:g} s or more: the file collection orders tests by",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        durations: dict[str, float] = json.loads(DURATIONS.read_text())
    except FileNotFoundError:
        return
    items.sort(key=lambda item: -durations.get(item.nodeid, 0.0))  # stable: ties keep order


_RECORDED: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _RECORDED[report.nodeid] = _RECORDED.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--record-durations")
    if path is None or hasattr(session.config, "workerinput"):  # the xdist controller writes
        return
    long = {k: round(v, 1) for k, v in _RECORDED.items() if v >= RECORD_FLOOR_SECS}
    ordered = dict(sorted(long.items(), key=lambda kv: (-kv[1], kv[0])))
    Path(path).write_text(json.dumps(ordered, indent=1) + "\n")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = Stack.start()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def db_url(stack: Stack) -> Iterator[str]:
    url = stack.clone()
    try:
        yield url
    finally:
        stack.drop(url)


@pytest.fixture
def settings(db_url: str, stack: Stack) -> Settings:
    return test_settings(db_url, stack.redis_url)


# Building the app (about 250 route handlers) costs a quarter of a CPU-second, more than most
# tests: each worker builds one per construction-relevant setting and starts it afresh for every
# test, with that test's settings and metrics (the lifespan reads ``app.state.settings``).
_APPS: dict[tuple[str, str | None], Litestar] = {}
_ROUTES: dict[tuple[str, str | None], int] = {}


def started_afresh(settings: Settings) -> Litestar:
    key = (repr(settings.cors), settings.security.metrics_token)
    app = _APPS.get(key)
    if app is None or len(app.routes) != _ROUTES[key]:  # a test added a route: build anew
        app = _APPS[key] = create_app(settings)
        _ROUTES[key] = len(app.routes)
        return app
    handler = app.asgi_handler
    assert isinstance(handler, RequestContext), handler
    metrics = Metrics()
    handler.metrics = app.state.metrics = metrics
    app.state.settings = settings
    app.state.pop("resources", None)
    return app


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return started_afresh(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as c:
        yield c


@dataclass
class Persona:
    """An API caller: a client plus the headers that authenticate it."""

    client: AsyncTestClient[Litestar]
    headers: dict[str, str]
    org_id: Any = None

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Any:
        return await self.request("PATCH", path, **kw)

    async def put(self, path: str, **kw: Any) -> Any:
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)


async def make_org(db_url: str, name: str) -> tuple[Any, str]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        org_id = await create_org(conn, name)
        token = await create_token(conn, TOKEN_KEY, org_id, "tests")
    return org_id, token.token


@pytest.fixture
async def owner(client: AsyncTestClient[Litestar], db_url: str) -> Persona:
    org_id, token = await make_org(db_url, "Acme")
    return Persona(client, {"Authorization": f"Bearer {token}"}, org_id)


@pytest.fixture
async def outsider(client: AsyncTestClient[Litestar], db_url: str) -> Persona:
    org_id, token = await make_org(db_url, "Umbrella")
    return Persona(client, {"Authorization": f"Bearer {token}"}, org_id)


@pytest.fixture
def operator(client: AsyncTestClient[Litestar]) -> Persona:
    return Persona(client, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})


@pytest.fixture
def anon(client: AsyncTestClient[Litestar]) -> Persona:
    return Persona(client, {})


def assert_error(resp: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The response is the one error envelope with this status, code and (if given) field."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "field", "details", "trace_id"}, err
    assert err["code"] == code, err
    assert err["message"], err
    if field is not None:
        assert err["field"] == field, err
    return err
