"""Custom domains: claim, prove with a DNS TXT record (looked up from a real UDP DNS server the
test runs, built with dnspython), then the page answers on that Host."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings, StatusPageSettings
from tests.conftest import Persona, assert_error, make_org

from .helpers import PAGES, add_component, make_page, make_target


class TxtServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.records: dict[str, list[str]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        query = dns.message.from_wire(data)
        q = query.question[0]
        name = q.name.to_text().lower()
        response = dns.message.make_response(query)
        values = self.records.get(name)
        if values and q.rdtype == dns.rdatatype.TXT:
            quoted = [f'"{v}"' for v in values]
            response.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", "TXT", quoted))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
def txt_server() -> Iterator[tuple[TxtServer, int]]:
    """The server runs on its own loop in its own thread: the test client blocks the test's
    loop while the app handles a request."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[asyncio.DatagramTransport, TxtServer]:
        return await loop.create_datagram_endpoint(TxtServer, local_addr=("127.0.0.1", 0))

    transport, server = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    try:
        yield server, transport.get_extra_info("sockname")[1]
    finally:
        loop.call_soon_threadsafe(transport.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
async def dns_client(
    settings: Settings, txt_server: tuple[TxtServer, int]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    _, port = txt_server
    configured = dataclasses.replace(
        settings,
        status_pages=StatusPageSettings(dns_server="127.0.0.1", dns_port=port, dns_timeout_secs=2),
    )
    async with AsyncTestClient(app=create_app(configured)) as c:
        yield c


async def test_claim_verify_and_serve_on_host(
    dns_client: AsyncTestClient[Litestar], db_url: str, txt_server: tuple[TxtServer, int]
) -> None:
    server, _ = txt_server
    org_id, token = await make_org(db_url, "Acme")
    owner = Persona(dns_client, {"Authorization": f"Bearer {token}"}, org_id)
    page = await make_page(owner, "acme")
    await add_component(owner, page["id"], await make_target(owner, "api"), public_name="API")
    url = f"{PAGES}/{page['id']}/domain"

    resp = await owner.put(url, json={"domain": "Status.Example.COM"})
    assert resp.status_code == 200, resp.text
    claim = resp.json()
    assert claim["domain"] == "status.example.com" and claim["verified"] is False
    assert claim["txt_name"] == "_vigil-challenge.status.example.com"
    assert claim["txt_value"].startswith("vigil-verify=")

    # Not served before it is verified.
    assert (await dns_client.get("/", headers={"Host": "status.example.com"})).status_code == 404
    err = assert_error(await owner.post(f"{url}/verify"), 422, "DOMAIN_NOT_VERIFIED")
    assert err["details"]["txt_name"] == claim["txt_name"]
    server.records[claim["txt_name"] + "."] = ["vigil-verify=wrong"]
    assert_error(await owner.post(f"{url}/verify"), 422, "DOMAIN_NOT_VERIFIED")

    server.records[claim["txt_name"] + "."] = ["unrelated", claim["txt_value"]]
    resp = await owner.post(f"{url}/verify")
    assert resp.status_code == 200, resp.text
    assert resp.json()["verified"] is True and resp.json()["verified_at"]
    got = (await owner.get(f"{PAGES}/{page['id']}")).json()
    assert got["custom_domain"] == "status.example.com" and got["domain_verified"] is True

    served = await dns_client.get("/", headers={"Host": "status.example.com:443"})
    assert served.status_code == 200 and "API" in served.text and "Acme status" in served.text
    assert (await dns_client.get("/", headers={"Host": "other.example.com"})).status_code == 404

    assert (await owner.delete(url)).status_code == 204
    assert_error(await owner.get(url), 404, "DOMAIN_NOT_FOUND")
    assert (await dns_client.get("/", headers={"Host": "status.example.com"})).status_code == 404


async def test_domain_bad_input_taken_and_cross_org(owner: Persona, outsider: Persona) -> None:
    page = await make_page(owner, "acme")
    theirs = await make_page(outsider, "theirs")
    url = f"{PAGES}/{page['id']}/domain"
    for bad in ("localhost", "1.2.3.4", "bad_host.example.com", "-a.example.com", "a..b"):
        assert_error(await owner.put(url, json={"domain": bad}), 400, "INVALID_CUSTOM_DOMAIN")
    assert (await owner.put(url, json={"domain": "status.acme.test"})).status_code == 200
    assert_error(
        await outsider.put(f"{PAGES}/{theirs['id']}/domain", json={"domain": "status.acme.test"}),
        409,
        "DOMAIN_TAKEN",
    )
    for method in ("get", "delete"):
        assert_error(await getattr(outsider, method)(url), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(await outsider.post(f"{url}/verify"), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(
        await outsider.put(url, json={"domain": "x.example.com"}), 404, "STATUS_PAGE_NOT_FOUND"
    )
