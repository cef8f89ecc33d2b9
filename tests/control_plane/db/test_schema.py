"""``control_plane/db/schema.sql`` is the schema the migrations produce (procrastinate's check).

Both sides are dumped by the same pg_dump from the same server: the migrations applied to a
fresh database, and ``schema.sql`` loaded into another. A migration added or edited without
``make schema`` makes them differ.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from control_plane.db.schema import SCHEMA_FILE, dump, migrated_dump
from control_plane.dev.embedded import pg_bin_dir
from tests.stack import Stack, with_database


def test_reference_schema_is_what_the_migrations_produce(stack: Stack) -> None:
    pg_dump = pg_bin_dir() / "pg_dump"
    from_migrations = migrated_dump(stack.admin_url, pg_dump)
    name = f"vigil_ref_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(stack.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(stack.admin_url, name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA_FILE.read_text().encode())
        from_reference = dump(url, pg_dump)
    finally:
        with psycopg.connect(stack.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    assert from_reference == from_migrations, (
        "control_plane/db/schema.sql is not what the migrations produce: run `make schema`"
    )
