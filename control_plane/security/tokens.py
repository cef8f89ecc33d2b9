"""Bearer tokens (API, agent, share): shown once, stored as a short prefix plus a keyed hash.

A token is ``<kind prefix><random>``. The first ``PREFIX_CHARS`` random characters, with the kind
prefix, are stored in clear to find the row; the whole token is HMAC-SHA256'd with the deployment's
token key and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX_CHARS = 8
API_TOKEN_PREFIX = "vgl_"
AGENT_TOKEN_PREFIX = "sm_agent_"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    prefix: str
    hash: bytes


def token_hash(key: bytes, token: str) -> bytes:
    return hmac.new(key, token.encode(), hashlib.sha256).digest()


def issue(key: bytes, kind_prefix: str) -> IssuedToken:
    token = kind_prefix + secrets.token_urlsafe(32)
    return IssuedToken(token, lookup_prefix(token, kind_prefix) or "", token_hash(key, token))


def lookup_prefix(token: str, kind_prefix: str) -> str | None:
    """The stored prefix for ``token``, or None if it is not shaped like one of this kind."""
    if not token.startswith(kind_prefix) or len(token) < len(kind_prefix) + PREFIX_CHARS + 16:
        return None
    return token[: len(kind_prefix) + PREFIX_CHARS]


def verify(key: bytes, token: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(token_hash(key, token), stored_hash)
