"""A real ``vigil serve`` over a raw socket: what its HTTP parser refuses (a malformed request
line, a head too large) is answered in the error envelope, not uvicorn's plain text."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from control_plane.core.input_limits import MAX_HEADER_BYTES
from tests.e2e.processes import System

pytestmark = pytest.mark.e2e


@pytest.fixture
async def served(db_url: str, stack: Any, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    system = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await system.start_control_plane()
    parts = urlsplit(system.base_url)
    try:
        yield parts.hostname or "127.0.0.1", parts.port or 80
    finally:
        system.stop_all()


def exchange(address: tuple[str, int], raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read the whole answer (the server closes after an error)."""
    with socket.create_connection(address, timeout=10) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def assert_envelope(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got, headers, body = answer
    assert got == status, answer
    assert headers["content-type"].startswith("application/json"), headers
    err = json.loads(body)["error"]
    assert set(err) == {"code", "message", "field", "details", "trace_id"}, err
    assert err["code"] == code and err["message"], err


async def test_parser_refusals_are_answered_in_the_envelope(served: tuple[str, int]) -> None:
    host = f"Host: {served[0]}\r\n".encode()
    ok = exchange(served, b"GET /healthz HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
    assert ok[0] == 200
    for raw in [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + host + b"No colon here\r\n\r\n",
        b"GET /he lthz x HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /healthz HTTP/1.1\r\n" + host + b"Content-Length: x\r\n\r\n",
    ]:
        assert_envelope(exchange(served, raw), 400, "BAD_REQUEST")


async def test_a_head_past_the_limit_is_431_in_the_envelope(served: tuple[str, int]) -> None:
    host = f"Host: {served[0]}\r\n".encode()
    many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
    assert_envelope(
        exchange(served, b"GET /healthz HTTP/1.1\r\n" + host + many + b"\r\n"),
        431,
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
    )
    one_huge = b"X-Huge: " + b"v" * (4 * MAX_HEADER_BYTES) + b"\r\n"
    assert_envelope(
        exchange(served, b"GET /healthz HTTP/1.1\r\n" + host + one_huge + b"\r\n"),
        431,
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
    )
    long_line = b"GET /healthz?" + b"q" * (2 * MAX_HEADER_BYTES) + b" HTTP/1.1\r\n" + host + b"\r\n"
    assert_envelope(exchange(served, long_line), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    endless = b"GET /healthz HTTP/1.1\r\n" + host + b"X-Endless: " + b"v" * (3 * MAX_HEADER_BYTES)
    assert_envelope(exchange(served, endless), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
