"""The agent's settings, from command-line flags with ``VIGIL_AGENT_*`` environment fallbacks.

Every flag ``--some-option`` can also be given as ``VIGIL_AGENT_SOME_OPTION``; a flag wins over
the environment. Prefer ``VIGIL_AGENT_TOKEN`` to ``--token``: flags are visible in ``ps``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from probe_agent.checks.domain_expiry import IANA_RDAP_BOOTSTRAP
from shared.protocol import MAX_INGEST_BATCH, MAX_WAIT_MS

TOKEN_PREFIX = "sm_agent_"
ENV_PREFIX = "VIGIL_AGENT_"


class ConfigError(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    control_plane: str
    token: str
    concurrency: int = 100
    # Leases asked for beyond the free check slots, waiting for a worker (see runner.py).
    lease_ahead: int = 25
    # Agent processes on this host (``--processes``): each with its own share of the work.
    processes: int = 1
    # Resolve HTTP/TCP check hosts through the per-process cache (dnscache.py), or every time.
    dns_cache: bool = True
    # Checks of one org running at once against one (host, port); more are recorded throttled.
    per_host_max_inflight: int = 2
    spool_dir: Path = Path(".vigil/agent-spool")
    spool_max_bytes: int = 64 << 20
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    batch_size: int = 200
    batch_age_ms: int = 1000
    lease_wait_ms: int = 20_000
    shutdown_grace_s: float = 10.0
    log_level: str = "info"
    # Where domain_expiry checks find the RDAP server of each TLD (RFC 9224 dns.json).
    rdap_bootstrap_url: str = IANA_RDAP_BOOTSTRAP

    def __post_init__(self) -> None:
        url = urlsplit(self.control_plane)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"control plane URL must be http(s)://host[:port], got {self.control_plane!r}"
            )
        rdap = urlsplit(self.rdap_bootstrap_url)
        if rdap.scheme not in ("http", "https") or not rdap.hostname:
            raise ConfigError(
                f"rdap-bootstrap-url must be an http(s) URL, got {self.rdap_bootstrap_url!r}"
            )
        if not self.token.startswith(TOKEN_PREFIX) or len(self.token) <= len(TOKEN_PREFIX):
            raise ConfigError(f"the agent token must start with {TOKEN_PREFIX!r}")
        _check_range("concurrency", self.concurrency, 1, 10_000)
        _check_range("lease-ahead", self.lease_ahead, 0, 10_000)
        _check_range("processes", self.processes, 1, 256)
        _check_range("per-host-max-inflight", self.per_host_max_inflight, 1, 10_000)
        _check_range("spool-max-bytes", self.spool_max_bytes, 1 << 16, 1 << 40)
        _check_range("batch-size", self.batch_size, 1, MAX_INGEST_BATCH)
        _check_range("batch-age-ms", self.batch_age_ms, 1, 3_600_000)
        _check_range("lease-wait-ms", self.lease_wait_ms, 0, MAX_WAIT_MS)
        if self.metrics_port is not None:
            _check_range("metrics-port", self.metrics_port, 1, 65535)
        if not 0 <= self.shutdown_grace_s <= 600:
            raise ConfigError("shutdown-grace must be between 0 and 600 seconds")


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def default(flag: str, fallback: str | None = None) -> str | None:
        return env.get(ENV_PREFIX + flag.upper().replace("-", "_"), fallback)

    p = argparse.ArgumentParser(
        prog="vigil-agent",
        description="Vigil probe agent: leases due checks, runs them, reports the results.",
        epilog="Every option can also be set as VIGIL_AGENT_<OPTION> (e.g. VIGIL_AGENT_TOKEN).",
    )
    p.add_argument("--control-plane", default=default("control-plane"), metavar="URL")
    p.add_argument("--token", default=default("token"), help="sm_agent_… token of this agent")
    p.add_argument("--concurrency", default=default("concurrency", "100"), metavar="N")
    p.add_argument(
        "--lease-ahead",
        default=default("lease-ahead", "25"),
        metavar="N",
        help="due checks leased beyond the free check slots, so no worker waits for a lease",
    )
    p.add_argument(
        "--processes",
        default=default("processes", "1"),
        metavar="N",
        help="agent processes on this host, to use N cores (each gets its own spool "
        "sub-directory, and metrics port + i)",
    )
    p.add_argument(
        "--per-host-max-inflight",
        default=default("per-host-max-inflight", "2"),
        metavar="N",
        help="checks of one org at once against one (host, port); more are recorded throttled",
    )
    p.add_argument(
        "--dns-cache",
        default=default("dns-cache", "on"),
        choices=("on", "off"),
        help="keep resolved check hosts for their records' TTL (at most 5 min), or resolve "
        "each check afresh",
    )
    p.add_argument("--spool-dir", default=default("spool-dir", ".vigil/agent-spool"))
    p.add_argument("--spool-max-bytes", default=default("spool-max-bytes", str(64 << 20)))
    p.add_argument("--metrics-port", default=default("metrics-port"), metavar="PORT")
    p.add_argument("--metrics-host", default=default("metrics-host", "127.0.0.1"))
    p.add_argument("--batch-size", default=default("batch-size", "200"), metavar="N")
    p.add_argument("--batch-age-ms", default=default("batch-age-ms", "1000"), metavar="MS")
    p.add_argument("--lease-wait-ms", default=default("lease-wait-ms", "20000"), metavar="MS")
    p.add_argument(
        "--shutdown-grace",
        default=default("shutdown-grace", "10"),
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long running checks may take to finish",
    )
    p.add_argument("--log-level", default=default("log-level", "info"))
    p.add_argument(
        "--rdap-bootstrap-url",
        default=default("rdap-bootstrap-url", IANA_RDAP_BOOTSTRAP),
        metavar="URL",
        help="RDAP bootstrap registry (dns.json) for domain_expiry checks",
    )
    return p


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def parse_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> AgentConfig:
    """Raises ``ConfigError`` on a missing or invalid setting (argparse exits on unknown flags)."""
    args = _parser(env).parse_args(argv)
    if not args.control_plane:
        raise ConfigError("--control-plane (or VIGIL_AGENT_CONTROL_PLANE) is required")
    if not args.token:
        raise ConfigError("--token (or VIGIL_AGENT_TOKEN) is required")
    try:
        grace = float(args.shutdown_grace)
    except ValueError:
        raise ConfigError(f"shutdown-grace must be a number, got {args.shutdown_grace!r}") from None
    return AgentConfig(
        control_plane=args.control_plane,
        token=args.token.strip(),
        concurrency=_int("concurrency", args.concurrency),
        lease_ahead=_int("lease-ahead", args.lease_ahead),
        processes=_int("processes", args.processes),
        dns_cache=args.dns_cache == "on",
        per_host_max_inflight=_int("per-host-max-inflight", args.per_host_max_inflight),
        spool_dir=Path(args.spool_dir),
        spool_max_bytes=_int("spool-max-bytes", args.spool_max_bytes),
        metrics_port=_int("metrics-port", args.metrics_port) if args.metrics_port else None,
        metrics_host=args.metrics_host,
        batch_size=_int("batch-size", args.batch_size),
        batch_age_ms=_int("batch-age-ms", args.batch_age_ms),
        lease_wait_ms=_int("lease-wait-ms", args.lease_wait_ms),
        shutdown_grace_s=grace,
        log_level=args.log_level,
        rdap_bootstrap_url=args.rdap_bootstrap_url,
    )
