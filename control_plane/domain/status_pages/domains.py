"""Custom domains: a page claims ``status.example.com``, proves it with a DNS TXT record
(``_vigil-challenge.status.example.com`` = ``vigil-verify=<token>``) that Vigil looks up through
the deployment's resolver (``VIGIL_STATUS_DNS_SERVER``, else the system's), and is then served
on that Host at ``/``. Only the name to look up comes from the tenant; the connection goes to
the operator's resolver, never to an address a tenant chose.
"""

from __future__ import annotations

import re

import dns.asyncresolver
import dns.exception
import dns.resolver

from control_plane.core.errors import ApiError
from control_plane.settings import StatusPageSettings

CHALLENGE_LABEL = "_vigil-challenge"
VALUE_PREFIX = "vigil-verify="
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def domain(value: str) -> str:
    """A hostname with at least two labels, lowercased, not an IP address."""
    host = value.strip().lower().rstrip(".")
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ApiError(
            400,
            "INVALID_CUSTOM_DOMAIN",
            "domain must be a host name such as status.example.com",
            "/domain",
        )
    return host


def challenge_name(host: str) -> str:
    return f"{CHALLENGE_LABEL}.{host}"


async def txt_values(settings: StatusPageSettings, name: str) -> list[str]:
    """The TXT strings at ``name`` (empty when there are none or the lookup fails)."""
    resolver = dns.asyncresolver.Resolver(configure=settings.dns_server is None)
    if settings.dns_server is not None:
        resolver.nameservers = [settings.dns_server]
        resolver.port = settings.dns_port
    resolver.lifetime = settings.dns_timeout_secs
    try:
        answer = await resolver.resolve(name, "TXT")
    except (dns.exception.DNSException, OSError):
        return []
    values = []
    for rdata in answer:
        values.append(b"".join(rdata.strings).decode("utf-8", "replace"))  # type: ignore[attr-defined]
    return values
