"""Named SQL blocks loaded once from ``queries/*.sql``.

A block starts with ``-- name: <name>`` followed by optional ``--`` comment lines; parameters are
plain ``%(name)s``. Dynamic identifiers, where ever needed, go through ``psycopg.sql``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_QUERIES_DIR = Path(__file__).with_name("queries")
_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z0-9_]+)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        if m["name"] in out:
            raise ValueError(f"duplicate query name {m['name']!r}")
        out[m["name"]] = body
    return out


@cache
def queries(module: str) -> dict[str, str]:
    return parse_blocks((_QUERIES_DIR / f"{module}.sql").read_text())


class Queries:
    """Attribute access to one module's blocks: ``Q = Queries("targets"); Q.insert_target``."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> str:
        try:
            return queries(self._module)[name]
        except KeyError:
            raise AttributeError(f"no query {name!r} in {self._module}.sql") from None
