"""A process's memory of authenticated API keys, so the auth check is a hash and a dict lookup.

Keyed by the key's HMAC (never the key itself). An entry is trusted for
``accounts.key_cache_secs``; revocation still holds at once: the revoking process drops its
entries and sets a short-lived marker in Redis that every replica's rate-limit call checks for
keys it serves from memory (``core/ratelimit.py``). Expiry is checked on every use.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class CachedKey:
    ctx: Any  # core.auth.OrgContext
    budgets: dict[str, int | None]
    expires_at: datetime | None
    fresh_until: float  # time.monotonic()

    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= datetime.now(UTC)


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[bytes, CachedKey] = {}

    def get(self, digest: bytes) -> CachedKey | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.fresh_until <= time.monotonic():
            self._entries.pop(digest, None)
            return None
        return entry

    def put(self, digest: bytes, entry: CachedKey) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = entry

    def drop(self, digest: bytes) -> None:
        self._entries.pop(digest, None)

    def drop_key(self, key_id: uuid.UUID) -> None:
        for digest in [d for d, e in self._entries.items() if e.ctx.token_id == key_id]:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()
