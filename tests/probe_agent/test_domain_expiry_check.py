"""domain_expiry checks against a real local RDAP server (aiohttp on 127.0.0.1) that serves the
IANA-style bootstrap registry and the registries' /domain/{name} answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from probe_agent.agent import Agent
from probe_agent.checks import build_runners, run_lease
from probe_agent.checks.domain_expiry import (
    IANA_RDAP_BOOTSTRAP,
    DomainExpiryRunner,
    RdapBootstrap,
    parse_bootstrap,
)
from probe_agent.config import ConfigError, parse_config
from shared.checks import DomainExpiryCheck
from shared.protocol import CheckResult
from tests.probe_agent.helpers import make_lease

TOKEN = "sm_agent_test"


def in_days(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days, hours=1)


def rdap_domain(
    name: str, expires: datetime | str | None, registrar: str | None = "Example Registrar, Inc."
) -> dict[str, Any]:
    events = [{"eventAction": "registration", "eventDate": "2001-05-04T12:00:00Z"}]
    if expires is not None:
        date = expires if isinstance(expires, str) else expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        events.append({"eventAction": "expiration", "eventDate": date})
    entities: list[dict[str, Any]] = [
        {
            "objectClassName": "entity",
            "roles": ["technical"],
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Tech"]]],
        }
    ]
    if registrar is not None:
        entities.append(
            {
                "objectClassName": "entity",
                "roles": ["registrar"],
                "vcardArray": [
                    "vcard",
                    [["version", {}, "text", "4.0"], ["fn", {}, "text", registrar]],
                ],
            }
        )
    return {
        "objectClassName": "domain",
        "ldhName": name.upper(),
        "events": events,
        "entities": entities,
    }


class Rdap:
    """``/dns.json`` lists ``.test`` and ``.example`` under /rdap/ and ``co.test`` under /co/."""

    def __init__(self) -> None:
        self.domains: dict[str, tuple[int, Any]] = {}
        self.bootstrap_hits = 0
        self.bootstrap_status = 200
        self.requests: list[tuple[str, str]] = []  # (path, Accept)
        # domain -> where its RDAP answer redirects (a registry pointing elsewhere).
        self.redirects: dict[str, str] = {}
        self.server: TestServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    @property
    def bootstrap_url(self) -> str:
        return f"{self.base}/dns.json"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/dns.json", self._bootstrap)
        app.router.add_get("/rdap/domain/{name}", self._domain)
        app.router.add_get("/co/domain/{name}", self._domain)
        app.router.add_get("/elsewhere/domain/{name}", self._domain)
        return app

    async def _bootstrap(self, request: web.Request) -> web.Response:
        self.bootstrap_hits += 1
        if self.bootstrap_status != 200:
            return web.Response(status=self.bootstrap_status, text="down for maintenance")
        doc = {
            "version": "1.0",
            "publication": "2030-01-01T00:00:00Z",
            "services": [
                [["test", "example"], [f"{self.base}/rdap/"]],
                [["co.test"], [f"{self.base}/co"]],
                [["broken"], ["ftp://nowhere.invalid/"]],
            ],
        }
        return web.json_response(doc)

    async def _domain(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.headers.get("Accept", "")))
        name = request.match_info["name"]
        if name in self.redirects and not request.path.startswith("/elsewhere/"):
            raise web.HTTPFound(self.redirects[name])
        status, doc = self.domains.get(name, (404, {"errorCode": 404, "title": "Not Found"}))
        headers = {"Retry-After": "3600"} if status == 429 else None
        return web.json_response(
            doc, status=status, content_type="application/rdap+json", headers=headers
        )


@pytest.fixture
async def rdap() -> AsyncIterator[Rdap]:
    server_side = Rdap()
    server = TestServer(server_side.app(), host="127.0.0.1")
    await server.start_server()
    server_side.server = server
    try:
        yield server_side
    finally:
        await server.close()


def runner_for(rdap: Rdap, **kw: Any) -> DomainExpiryRunner:
    return DomainExpiryRunner(RdapBootstrap(rdap.bootstrap_url, **kw))


async def run(runner: DomainExpiryRunner, domain: str, **kw: Any) -> CheckResult:
    spec = DomainExpiryCheck(domain=domain, **kw)
    return await runner.run(spec, make_lease(spec))


async def test_a_domain_far_from_expiry_is_up(rdap: Rdap) -> None:
    expires = in_days(400)
    rdap.domains["example.test"] = (200, rdap_domain("example.test", expires))
    result = await run(runner_for(rdap), "Example.Test.")
    assert result.status == "up", result.error
    assert result.error is None and result.error_code is None
    assert result.details == {
        "domain": "example.test",
        "days_remaining": 400,
        "expiration_date": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "registrar": "Example Registrar, Inc.",
        "rdap_url": f"{rdap.base}/rdap/domain/example.test",
    }
    assert rdap.requests == [("/rdap/domain/example.test", "application/rdap+json")]


@pytest.mark.parametrize(
    ("days", "status", "code"),
    [
        (20, "degraded", "DOMAIN_EXPIRING"),
        (3, "down", "DOMAIN_EXPIRING"),
        (-1, "down", "DOMAIN_EXPIRED"),
    ],
)
async def test_days_remaining_map_to_status_with_the_facts_as_json_error(
    rdap: Rdap, days: int, status: str, code: str
) -> None:
    expires = in_days(days)
    rdap.domains["shop.example"] = (200, rdap_domain("shop.example", expires))
    result = await run(runner_for(rdap), "shop.example", warn_days=30, critical_days=7)
    assert result.status == status
    assert result.error_code == code
    facts = json.loads(result.error or "")
    assert facts == {
        "domain": "shop.example",
        "days_remaining": days,
        "expiration_date": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "registrar": "Example Registrar, Inc.",
    }
    assert {k: result.details[k] for k in facts} == facts


async def test_registrar_is_left_out_when_the_registry_names_none(rdap: Rdap) -> None:
    rdap.domains["anon.test"] = (200, rdap_domain("anon.test", in_days(10), registrar=None))
    result = await run(runner_for(rdap), "anon.test")
    assert result.status == "degraded"
    assert set(json.loads(result.error or "")) == {"domain", "days_remaining", "expiration_date"}


async def test_a_date_without_offset_is_read_as_utc(rdap: Rdap) -> None:
    expires = in_days(100).replace(tzinfo=None)
    rdap.domains["naive.test"] = (200, rdap_domain("naive.test", expires.isoformat()))
    result = await run(runner_for(rdap), "naive.test")
    assert result.status == "up", result.error
    assert result.details["days_remaining"] == 100


async def test_the_longest_listed_suffix_picks_the_server(rdap: Rdap) -> None:
    rdap.domains["shop.co.test"] = (200, rdap_domain("shop.co.test", in_days(300)))
    result = await run(runner_for(rdap), "shop.co.test")
    assert result.status == "up", result.error
    assert rdap.requests == [("/co/domain/shop.co.test", "application/rdap+json")]


async def test_an_unregistered_domain_is_down(rdap: Rdap) -> None:
    result = await run(runner_for(rdap), "gone.test")
    assert result.status == "down"
    assert result.error_code == "DOMAIN_NOT_FOUND"
    assert result.error == "the registry has no record of gone.test"


async def test_no_expiration_event_is_an_error(rdap: Rdap) -> None:
    rdap.domains["quiet.test"] = (200, rdap_domain("quiet.test", None))
    result = await run(runner_for(rdap), "quiet.test")
    assert result.status == "error"
    assert result.error_code == "RDAP_NO_EXPIRATION"


async def test_a_tld_the_bootstrap_does_not_list_is_an_error(rdap: Rdap) -> None:
    result = await run(runner_for(rdap), "example.org")
    assert result.status == "error"
    assert result.error_code == "RDAP_UNSUPPORTED_TLD"
    assert result.error == "the RDAP bootstrap lists no server for .org"
    # A service whose only URL is not http(s) is not usable either.
    broken = await run(runner_for(rdap), "x.broken")
    assert broken.error_code == "RDAP_UNSUPPORTED_TLD"


async def test_a_rate_limited_registry_is_an_error_not_down(rdap: Rdap) -> None:
    rdap.domains["busy.test"] = (429, {"errorCode": 429})
    result = await run(runner_for(rdap), "busy.test")
    assert result.status == "error"
    assert result.error_code == "RATE_LIMITED"
    assert result.status_code == 429
    assert "Retry-After: 3600" in (result.error or "")


async def test_a_registry_answering_garbage_is_an_error(rdap: Rdap) -> None:
    rdap.domains["odd.test"] = (500, {"errorCode": 500})
    result = await run(runner_for(rdap), "odd.test")
    assert result.status == "error"
    assert result.error_code == "RDAP_ERROR"
    assert result.status_code == 500


async def test_the_bootstrap_is_fetched_once_for_many_checks(rdap: Rdap) -> None:
    for name in ("a.test", "b.example", "c.co.test"):
        rdap.domains[name] = (200, rdap_domain(name, in_days(365)))
    runner = runner_for(rdap)
    first = await asyncio.gather(*(run(runner, n) for n in ("a.test", "b.example", "c.co.test")))
    again = await run(runner, "a.test")
    assert [r.status for r in [*first, again]] == ["up"] * 4
    assert rdap.bootstrap_hits == 1


async def test_the_bootstrap_is_fetched_again_after_its_ttl(rdap: Rdap) -> None:
    rdap.domains["a.test"] = (200, rdap_domain("a.test", in_days(365)))
    now = [1000.0]
    runner = runner_for(rdap, ttl_s=3600, clock=lambda: now[0])
    await run(runner, "a.test")
    now[0] += 3599
    await run(runner, "a.test")
    assert rdap.bootstrap_hits == 1
    now[0] += 2
    result = await run(runner, "a.test")
    assert result.status == "up"
    assert rdap.bootstrap_hits == 2


async def test_a_failed_bootstrap_is_an_error_and_not_remembered(rdap: Rdap) -> None:
    rdap.domains["a.test"] = (200, rdap_domain("a.test", in_days(365)))
    runner = runner_for(rdap)
    rdap.bootstrap_status = 503
    failed = await run(runner, "a.test")
    assert failed.status == "error"
    assert failed.error_code == "RDAP_BOOTSTRAP_FAILED"
    assert "503" in (failed.error or "")
    rdap.bootstrap_status = 200
    assert (await run(runner, "a.test")).status == "up"
    assert rdap.bootstrap_hits == 2


def test_parse_bootstrap_prefers_https_and_normalizes_the_base() -> None:
    doc = {
        "services": [
            [["COM", "net"], ["http://rdap.example/com", "https://rdap.example/com/v1"]],
            [["org"], ["http://only-http.example/"]],
            "not a service",
            [["bad"], []],
        ]
    }
    assert parse_bootstrap(doc) == {
        "com": "https://rdap.example/com/v1/",
        "net": "https://rdap.example/com/v1/",
        "org": "http://only-http.example/",
    }


async def test_the_agent_flag_and_environment_configure_the_bootstrap(rdap: Rdap) -> None:
    base = ["--control-plane", "http://127.0.0.1:1", "--token", TOKEN]
    assert parse_config(base, {}).rdap_bootstrap_url == IANA_RDAP_BOOTSTRAP
    env = {"VIGIL_AGENT_RDAP_BOOTSTRAP_URL": rdap.bootstrap_url}
    assert parse_config(base, env).rdap_bootstrap_url == rdap.bootstrap_url
    flag = parse_config([*base, "--rdap-bootstrap-url", "http://127.0.0.2/x.json"], env)
    assert flag.rdap_bootstrap_url == "http://127.0.0.2/x.json"
    with pytest.raises(ConfigError, match="rdap-bootstrap-url"):
        parse_config([*base, "--rdap-bootstrap-url", "file:///etc/passwd"], {})

    # The agent's domain_expiry runner asks the configured registry.
    rdap.domains["agent.test"] = (200, rdap_domain("agent.test", in_days(3)))
    agent = Agent(parse_config(base, env))
    lease = make_lease(DomainExpiryCheck(domain="agent.test"))
    result = await run_lease(lease, agent.runners)
    assert result.status == "down"
    assert result.error_code == "DOMAIN_EXPIRING"
    assert rdap.bootstrap_hits == 1


async def test_domain_expiry_runs_through_the_registry(rdap: Rdap) -> None:
    rdap.domains["reg.test"] = (200, rdap_domain("reg.test", in_days(90)))
    lease = make_lease(DomainExpiryCheck(domain="reg.test"))
    result = await run_lease(lease, build_runners(rdap_bootstrap_url=rdap.bootstrap_url))
    assert result.status == "up", result.error
    assert result.lease_id == lease.lease_id


# -- the SSRF guard ------------------------------------------------------------------------------


async def test_a_bootstrap_on_a_private_address_is_trusted_in_a_guarded_region(
    rdap: Rdap,
) -> None:
    # The operator's bootstrap (an air-gapped mirror, here 127.0.0.1) and the servers it lists
    # are reached even where private addresses are blocked for tenants.
    rdap.domains["mirror.test"] = (200, rdap_domain("mirror.test", in_days(200)))
    spec = DomainExpiryCheck(domain="mirror.test")
    result = await runner_for(rdap).run(spec, make_lease(spec, allow_private=False))
    assert result.status == "up", result.error


@pytest.mark.parametrize(
    "where",
    [
        "http://localhost:{port}/elsewhere/domain/{name}",  # a name resolving to 127.0.0.1
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
async def test_a_registry_redirect_to_a_private_address_is_blocked(rdap: Rdap, where: str) -> None:
    assert rdap.server is not None
    rdap.redirects["sneaky.test"] = where.format(port=rdap.server.port, name="sneaky.test")
    rdap.domains["sneaky.test"] = (200, rdap_domain("sneaky.test", in_days(200)))
    spec = DomainExpiryCheck(domain="sneaky.test", timeout=3000)
    result = await runner_for(rdap).run(spec, make_lease(spec, allow_private=False))
    assert (result.status, result.error_code) == ("error", "SSRF_BLOCKED"), result.error
    assert result.details is not None and "range" in result.details
    # Nothing was fetched from where the redirect pointed.
    assert [path for path, _ in rdap.requests] == ["/rdap/domain/sneaky.test"]

    # Where the region allows private targets, the same redirect is followed.
    if "localhost" in where:
        allowed = await runner_for(rdap).run(spec, make_lease(spec))
        assert allowed.status == "up", allowed.error
        assert rdap.requests[-1][0] == "/elsewhere/domain/sneaky.test"
