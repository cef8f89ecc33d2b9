"""Request ids, JSON logs with request and org, and the Prometheus /metrics endpoint."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from litestar import Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from control_plane.app import create_app
from control_plane.core.auth import OrgContext, provide_org
from control_plane.core.logs import configure_logging
from control_plane.core.observability import Metrics, metrics_of
from control_plane.settings import Settings, settings_from_env
from tests.conftest import Persona, assert_error

HEX_ID = re.compile(r"^[0-9a-f]{32}$")
log = structlog.get_logger("tests.observability")


# --- request ids -----------------------------------------------------------------------------


async def test_a_request_without_id_gets_a_fresh_one(anon: Persona) -> None:
    first = await anon.get("/healthz")
    second = await anon.get("/healthz")
    assert HEX_ID.match(first.headers["x-request-id"])
    assert HEX_ID.match(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_sane_request_id_is_echoed_and_is_the_error_trace_id(owner: Persona) -> None:
    rid = "client-req_42.retry-1"
    resp = await owner.get(f"/api/v1/targets/{uuid.uuid4()}", headers={"X-Request-ID": rid})
    err = assert_error(resp, 404, "TARGET_NOT_FOUND")
    assert resp.headers["x-request-id"] == rid
    assert err["trace_id"] == rid


@pytest.mark.parametrize(
    "sent", ["has spaces", "x" * 129, "semi;colon", "ünïcode".encode(), 'quote"d', "slash/ed"]
)
async def test_an_unsafe_request_id_is_replaced(anon: Persona, sent: str | bytes) -> None:
    resp = await anon.get("/no/such/route", headers={"X-Request-ID": sent})
    err = assert_error(resp, 404, "NOT_FOUND")
    assert HEX_ID.match(resp.headers["x-request-id"])
    assert err["trace_id"] == resp.headers["x-request-id"]


async def test_a_128_char_request_id_is_kept(anon: Persona) -> None:
    rid = "A" * 128
    resp = await anon.get("/healthz", headers={"X-Request-ID": rid})
    assert resp.headers["x-request-id"] == rid


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/route", 404, "NOT_FOUND"),
        ("GET", "/api/v1/no-such-thing", 404, "NOT_FOUND"),
        ("GET", "/api/no-such-page", 404, "NOT_FOUND"),
        ("GET", "/api/v1/targets", 401, "UNAUTHORIZED"),
        ("GET", "/operator/regions", 401, "UNAUTHORIZED"),
        ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_every_error_envelope_carries_the_request_id_as_trace_id(
    anon: Persona, method: str, path: str, status: int, code: str
) -> None:
    resp = await anon.request(method, path)
    err = assert_error(resp, status, code)
    assert HEX_ID.match(err["trace_id"])
    assert err["trace_id"] == resp.headers["x-request-id"]


# --- logs ------------------------------------------------------------------------------------


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The real logging configuration, writing to a buffer; the previous one restored after."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("info", stream=buffer)
    try:
        yield buffer
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def _with_logging_route(app: Litestar) -> Litestar:
    """A tenant route that logs from inside the handler; its two independent dependencies make
    Litestar resolve them in separate tasks, so the org is bound where the handler cannot see
    contextvars set there."""

    async def provide_other() -> int:
        return 1

    @get(
        "/api/v1/_log-probe",
        dependencies={"org": Provide(provide_org), "other": Provide(provide_other)},
        include_in_schema=False,
    )
    async def log_probe(
        org: NamedDependency[OrgContext], other: NamedDependency[int]
    ) -> dict[str, str]:
        log.info("inside_handler", marker="probe")
        logging.getLogger("tests.stdlib").warning("stdlib line")
        return {"org": str(org.org_id)}

    app.register(log_probe)
    return app


async def test_log_lines_inside_a_tenant_request_carry_request_id_and_org_id(
    settings: Settings, db_url: str, json_logs: io.StringIO
) -> None:
    from tests.conftest import make_org

    org_id, token = await make_org(db_url, "Logs Inc")
    app = _with_logging_route(create_app(settings))
    async with AsyncTestClient(app=app) as client:
        resp = await client.get(
            "/api/v1/_log-probe",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "log-test-1"},
        )
    assert resp.status_code == 200, resp.text
    records = lines(json_logs)
    inside = [r for r in records if r.get("event") == "inside_handler"]
    assert len(inside) == 1
    assert inside[0]["request_id"] == "log-test-1"
    assert inside[0]["org_id"] == str(org_id)
    stdlib = [r for r in records if r.get("event") == "stdlib line"]
    assert len(stdlib) == 1
    assert stdlib[0]["request_id"] == "log-test-1"
    assert stdlib[0]["org_id"] == str(org_id)
    access = [r for r in records if r.get("event") == "http_request"]
    assert len(access) == 1
    assert access[0] == {
        **access[0],
        "method": "GET",
        "path": "/api/v1/_log-probe",
        "route": "/api/v1/_log-probe",
        "status": 200,
        "request_id": "log-test-1",
        "org_id": str(org_id),
        "level": "info",
    }
    assert isinstance(access[0]["duration_ms"], float)
    # Nothing of the request stays bound once it is over.
    assert "request_id" not in structlog.contextvars.get_contextvars()
    assert "org_id" not in structlog.contextvars.get_contextvars()


async def test_each_request_logs_one_access_line_with_its_own_ids(
    owner: Persona, json_logs: io.StringIO
) -> None:
    target_id = uuid.uuid4()
    await owner.get(f"/api/v1/targets/{target_id}", headers={"X-Request-ID": "req-a"})
    await owner.client.get("/no/such/route", headers={"X-Request-ID": "req-b"})
    access = [r for r in lines(json_logs) if r.get("event") == "http_request"]
    assert [(r["request_id"], r["route"], r["status"]) for r in access] == [
        ("req-a", "/api/v1/targets/{target_id}", 404),
        ("req-b", "<unmatched>", 404),
    ]
    assert access[0]["org_id"] == str(owner.org_id)
    assert "org_id" not in access[1]  # the org of the previous request does not leak
    assert access[0]["path"] == f"/api/v1/targets/{target_id}"


# --- metrics ---------------------------------------------------------------------------------


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def test_metrics_count_requests_by_route_template_and_status(
    app: Litestar, owner: Persona, anon: Persona
) -> None:
    missing = [uuid.uuid4(), uuid.uuid4()]
    for target_id in missing:
        assert (await owner.get(f"/api/v1/targets/{target_id}")).status_code == 404
    assert (await owner.get("/api/v1/targets")).status_code == 200
    stray = f"/no/such/{uuid.uuid4()}"
    assert (await anon.get(stray)).status_code == 404

    resp = await anon.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=")
    text = resp.text
    counts = samples(text, "vigil_http_requests_total")
    one = "/api/v1/targets/{target_id}"
    assert counts[key(method="GET", route=one, status="404")] == 2
    assert counts[key(method="GET", route="/api/v1/targets", status="200")] == 1
    assert counts[key(method="GET", route="<unmatched>", status="404")] == 1
    durations = samples(text, "vigil_http_request_duration_seconds_count")
    assert durations[key(method="GET", route=one)] == 2

    # Labels are route templates, never raw paths or ids.
    templates = {route.path_format for route in app.routes} | {"<unmatched>"}
    assert {dict(k)["route"] for k in counts} <= templates
    for target_id in missing:
        assert str(target_id) not in text
    assert stray not in text


async def test_each_app_counts_only_its_own_requests(settings: Settings) -> None:
    first, second = create_app(settings), create_app(settings)
    assert metrics_of_app(first) is not metrics_of_app(second)
    async with AsyncTestClient(app=first) as a, AsyncTestClient(app=second) as b:
        for _ in range(3):
            await a.get("/healthz")
        first_text = (await a.get("/metrics")).text
        second_text = (await b.get("/metrics")).text
    healthz = key(method="GET", route="/healthz", status="200")
    assert samples(first_text, "vigil_http_requests_total")[healthz] == 3
    assert healthz not in samples(second_text, "vigil_http_requests_total")


def metrics_of_app(app: Litestar) -> Metrics:
    metrics: Metrics = app.state.metrics
    return metrics


async def test_other_modules_register_metrics_on_the_apps_registry(app: Litestar) -> None:
    metrics = metrics_of_app(app)
    gauge = metrics.gauge("vigil_test_agents_online", "agents seen recently", ["region"])
    assert metrics.gauge("vigil_test_agents_online", "again", ["region"]) is gauge
    gauge.labels(region="eu-west").set(3)
    counter = metrics.counter("vigil_test_things_total", "things done")
    counter.inc(2)
    async with AsyncTestClient(app=app) as client:
        text = (await client.get("/metrics")).text
    assert samples(text, "vigil_test_agents_online") == {key(region="eu-west"): 3.0}
    assert samples(text, "vigil_test_things_total") == {(): 2.0}


def test_metric_names_and_kinds_are_checked() -> None:
    metrics = Metrics()
    metrics.counter("vigil_test_events_total", "events", ["kind"])
    with pytest.raises(ValueError, match="already registered"):
        metrics.gauge("vigil_test_events_total", "events", ["kind"])
    with pytest.raises(ValueError, match="already registered"):
        metrics.counter("vigil_test_events_total", "events", ["other"])
    with pytest.raises(ValueError, match="vigil_"):
        metrics.counter("http_requests_total", "not ours")


async def test_metrics_of_a_request_is_the_apps_metrics(settings: Settings) -> None:
    app = create_app(settings)  # its own: the route registered here must not outlive the test

    @get("/_metrics-probe", include_in_schema=False)
    async def probe_handler(request: Request[Any, Any, Any]) -> dict[str, bool]:
        return {"same": metrics_of(request) is app.state.metrics}

    app.register(probe_handler)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/_metrics-probe")).json() == {"same": True}


async def test_metrics_can_require_a_bearer_token(settings: Settings) -> None:
    security = dataclasses.replace(settings.security, metrics_token="scrape-secret")
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "scrape-secret"}):
            resp = await client.get("/metrics", headers=headers)
            assert_error(resp, 401, "UNAUTHORIZED")
            assert resp.headers["www-authenticate"] == "Bearer"
            assert "vigil_http_requests_total" not in resp.text
        ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200, ok.text
        assert "vigil_http_requests_total" in ok.text
    # Unset, /metrics stays open (for a scraper on a private network).
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/metrics")).status_code == 200


def test_the_metrics_token_comes_from_the_environment() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://db/vigil",
        "VIGIL_REDIS_URL": "redis://r/0",
        "VIGIL_TOKEN_KEY": "dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHQ=",
        "VIGIL_SECRET_KEYS": "k1:MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=",
    }
    assert settings_from_env(env).security.metrics_token is None
    env["VIGIL_METRICS_TOKEN"] = "abc"
    assert settings_from_env(env).security.metrics_token == "abc"
