"""The control plane's agent surface (``/api/agent``) over HTTP, authenticated by the agent token.

Failures are sorted by what the caller should do about them:

- ``AgentRevokedError`` (401): the token is no longer valid; the agent stops.
- ``ControlPlaneUnavailableError`` (connection errors, timeouts, 5xx, 408, 429, unreadable
  200s): transient, retry later. Re-sending a result is safe, ingest is idempotent per slot.
- ``RequestRejectedError`` (any other 4xx): this request will never succeed; drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp
import msgspec

from probe_agent import USER_AGENT
from probe_agent.leases import LeaseBatch, decode_lease_response
from shared.protocol import (
    MAX_LEASE_BATCH,
    MAX_WAIT_MS,
    CheckResult,
    IngestRequest,
    IngestResponse,
    LeaseRequest,
    ReleaseRequest,
    ReleaseResponse,
)

# Time allowed on top of the long-poll wait for the lease answer to arrive.
LEASE_SLACK_S = 15.0
INGEST_TIMEOUT_S = 30.0
# Giving leases back at shutdown: short, the slots expire on their own anyway.
RELEASE_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 10.0
_TRANSIENT_4XX = frozenset({408, 429})


class ControlPlaneError(Exception):
    pass


class AgentRevokedError(ControlPlaneError):
    """401: the agent token is unknown or revoked."""


class ControlPlaneUnavailableError(ControlPlaneError):
    """Transient: the control plane cannot be reached or cannot answer right now."""


class RequestRejectedError(ControlPlaneError):
    """A 4xx other than 401: the request itself is wrong and will not succeed if re-sent."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class _ErrorBody(msgspec.Struct):
    code: str = "UNKNOWN"
    message: str = ""


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody


def _error_of(payload: bytes) -> _ErrorBody:
    try:
        return msgspec.json.decode(payload, type=_ErrorEnvelope).error
    except msgspec.DecodeError:
        return _ErrorBody(message=payload[:200].decode("utf-8", errors="replace"))


class ControlPlaneClient:
    """One keep-alive session to the control plane. Use as an async context manager."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        user_agent: str = USER_AGENT,
        ingest_timeout: float = INGEST_TIMEOUT_S,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._ingest_timeout = ingest_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ControlPlaneClient:
        self._session = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def lease(self, max_leases: int, wait_ms: int) -> LeaseBatch:
        """Up to ``max_leases`` due slots, long-polling up to ``wait_ms`` when none is due."""
        body = LeaseRequest(
            max=max(1, min(max_leases, MAX_LEASE_BATCH)),
            wait_ms=max(0, min(wait_ms, MAX_WAIT_MS)),
        )
        payload = await self._post(
            "/api/agent/lease", msgspec.json.encode(body), body.wait_ms / 1000 + LEASE_SLACK_S
        )
        try:
            return decode_lease_response(payload)
        except msgspec.DecodeError as exc:
            raise ControlPlaneUnavailableError(f"unreadable lease response: {exc}") from exc

    async def ingest(self, results: Sequence[CheckResult]) -> IngestResponse:
        body = msgspec.json.encode(IngestRequest(results=list(results)))
        payload = await self._post("/api/agent/ingest", body, self._ingest_timeout)
        try:
            return msgspec.json.decode(payload, type=IngestResponse)
        except msgspec.DecodeError as exc:
            # The batch may or may not have been stored; re-sending it is harmless.
            raise ControlPlaneUnavailableError(f"unreadable ingest response: {exc}") from exc

    async def release(self, lease_ids: Sequence[str], budget_s: float = RELEASE_TIMEOUT_S) -> int:
        """Give back leases this agent will not run (it is stopping); how many slots the control
        plane made leasable again."""
        body = msgspec.json.encode(ReleaseRequest(lease_ids=list(lease_ids)))
        payload = await self._post("/api/agent/release", body, budget_s)
        try:
            return msgspec.json.decode(payload, type=ReleaseResponse).released
        except msgspec.DecodeError as exc:
            raise ControlPlaneUnavailableError(f"unreadable release response: {exc}") from exc

    async def _post(self, path: str, body: bytes, budget_s: float) -> bytes:
        if self._session is None:
            raise RuntimeError("ControlPlaneClient used outside 'async with'")
        url = self._base + path
        client_timeout = aiohttp.ClientTimeout(total=budget_s, sock_connect=CONNECT_TIMEOUT_S)
        try:
            async with self._session.post(
                url, data=body, timeout=client_timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                payload = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ControlPlaneUnavailableError(f"POST {path}: {_describe(exc)}") from exc
        if 200 <= status < 300:
            return payload
        error = _error_of(payload)
        if status == 401:
            raise AgentRevokedError(f"POST {path}: 401 {error.code}: {error.message}")
        if status >= 500 or status in _TRANSIENT_4XX:
            raise ControlPlaneUnavailableError(f"POST {path}: {status} {error.code}")
        if 400 <= status < 500:
            raise RequestRejectedError(status, error.code, error.message)
        raise ControlPlaneUnavailableError(f"POST {path}: unexpected status {status}")


def _describe(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
