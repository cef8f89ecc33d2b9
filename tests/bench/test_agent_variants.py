"""The agent scenario's variants: what each one's targets are, what the bare aiohttp loop is
given to do the same work, and which peers it is compared with (slow-dns: none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.aiohttp_loop import url_for
from bench.peers import DNS_ZONE, Blackbox, Nginx, SlowDns
from bench.proc import Processes
from bench.scenarios.agent import (
    SLOW_DNS,
    VARIANTS,
    aiohttp_args,
    check_variants,
    peers_of,
    specs,
)
from shared.checks import HttpCheck, TcpCheck


@pytest.fixture
def peers(tmp_path: Path) -> tuple[Nginx, SlowDns]:
    procs = Processes(tmp_path / "logs")
    nginx = Nginx(tmp_path / "nginx", procs, http_port=8001, https_port=8002, tcp_port=8003)
    return nginx, SlowDns(tmp_path / "slowdns", procs, port=9001)


def test_loopback_variants_check_one_nginx_by_ip_literal(peers: tuple[Nginx, SlowDns]) -> None:
    nginx, slowdns = peers
    assert (
        specs("http", nginx, slowdns, 3)
        == [HttpCheck(url="http://127.0.0.1:8001/", verify_tls=False)] * 3
    )
    assert (
        specs("https", nginx, None, 2)
        == [HttpCheck(url="https://127.0.0.1:8002/", verify_tls=False)] * 2
    )
    assert specs("tcp", nginx, None, 1) == [TcpCheck(host="127.0.0.1", port=8003)]
    assert aiohttp_args("http", nginx, None, 30_000) == ("http", "http://127.0.0.1:8001/", [])
    assert aiohttp_args("tcp", nginx, None, 30_000) == ("tcp", "127.0.0.1:8003", [])


def test_slow_dns_gives_every_target_a_name_of_its_own(peers: tuple[Nginx, SlowDns]) -> None:
    nginx, slowdns = peers
    zone = DNS_ZONE.rstrip(".")
    checks = specs(SLOW_DNS, nginx, slowdns, 1000)
    urls = [c.url for c in checks if isinstance(c, HttpCheck)]
    assert len(set(urls)) == 1000
    assert urls[0] == f"http://t0.{zone}:9001/" and urls[-1] == f"http://t999.{zone}:9001/"
    # The bare loop cycles through the same names, one request each in turn.
    kind, target, extra = aiohttp_args(SLOW_DNS, nginx, slowdns, 1000)
    assert (kind, extra) == ("names", ["1000"])
    assert [url_for(target, 1000, n) for n in (0, 999, 1000)] == [
        urls[0],
        urls[999],
        urls[0],
    ]


def test_the_bare_loop_keeps_one_url_outside_the_names_kind() -> None:
    assert url_for("http://127.0.0.1:8001/", 0, 12) == "http://127.0.0.1:8001/"


def test_slow_dns_is_not_compared_with_a_blackbox_that_cannot_resolve_its_names(
    tmp_path: Path,
) -> None:
    procs = Processes(tmp_path / "logs")
    boxes = [Blackbox(tmp_path / "bb", procs), Blackbox(tmp_path / "bb1", procs, gomaxprocs=1)]
    assert peers_of("http", boxes) == boxes
    assert peers_of(SLOW_DNS, boxes) == []


def test_unknown_variants_are_refused() -> None:
    check_variants(VARIANTS)
    with pytest.raises(ValueError, match="slow_dns"):
        check_variants(("http", "slow_dns"))
