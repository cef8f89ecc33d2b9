"""Named SQL blocks, each slice's own file, loaded once.

A slice keeps its SQL beside its code: ``queries.sql`` in its folder, or ``queries/<name>.sql``
when it has several. A block starts with ``-- name: <name>`` followed by optional ``--`` comment
lines; parameters are plain ``%(name)s``. Dynamic identifiers, where ever needed, go through
``psycopg.sql``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

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
def queries(path: Path) -> dict[str, str]:
    return parse_blocks(path.read_text())


class Queries:
    """Attribute access to one file's blocks: ``Q = Queries.beside(__file__); Q.insert_target``."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @classmethod
    def beside(cls, module_file: str, name: str | None = None) -> Queries:
        """The ``queries.sql`` next to ``module_file``, or ``queries/<name>.sql`` there."""
        folder = Path(module_file).parent
        return cls(folder / "queries.sql" if name is None else folder / "queries" / f"{name}.sql")

    def names(self) -> list[str]:
        return list(queries(self._path))

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return queries(self._path)[name]
        except KeyError:
            raise AttributeError(f"no query {name!r} in {self._path.name}") from None
