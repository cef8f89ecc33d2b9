"""Migrations: idempotent, safe when several replicas start at once, and loud about edits."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from control_plane.db.migrate import ADVISORY_LOCK_KEY, MigrationError, load_migrations, migrate
from tests.stack import Stack, with_database


@pytest.fixture
def empty_db_url(stack: Stack) -> Iterator[str]:
    """A database with nothing in it (not cloned from the migrated template)."""
    name = f"vigil_m_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(stack.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(stack.admin_url, name)
    try:
        yield url
    finally:
        stack.drop(url)


def applied_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()


def advisory_locks_held(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


def all_versions() -> list[int]:
    return [m.version for m in load_migrations()]


def test_first_run_applies_every_migration_in_order(empty_db_url: str) -> None:
    assert migrate(empty_db_url) == all_versions()
    rows = applied_rows(empty_db_url)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in load_migrations()
    ]
    with psycopg.connect(empty_db_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert {"orgs", "api_tokens", "targets", "target_regions", "regions"} <= tables
    assert advisory_locks_held(empty_db_url) == 0


def test_second_run_is_a_no_op(empty_db_url: str) -> None:
    migrate(empty_db_url)
    before = applied_rows(empty_db_url)
    assert migrate(empty_db_url) == []
    assert applied_rows(empty_db_url) == before


def test_migrating_the_cloned_test_database_again_is_a_no_op(db_url: str) -> None:
    before = applied_rows(db_url)
    assert [r[0] for r in before] == all_versions()
    assert migrate(db_url) == []
    assert applied_rows(db_url) == before


def test_concurrent_migrate_applies_each_migration_exactly_once(empty_db_url: str) -> None:
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[list[int]] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            applied = migrate(empty_db_url)
            with guard:
                results.append(applied)
        except BaseException as exc:  # collected and asserted on below
            with guard:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == workers
    applied_total = sorted(v for r in results for v in r)
    assert applied_total == all_versions(), "every migration applied once, by exactly one replica"
    assert [r[0] for r in applied_rows(empty_db_url)] == all_versions()
    assert advisory_locks_held(empty_db_url) == 0


def test_an_edited_migration_is_refused_loudly(empty_db_url: str) -> None:
    migrate(empty_db_url)
    first = load_migrations()[0]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
            ("0" * 64, first.version),
        )
    before = applied_rows(empty_db_url)
    with pytest.raises(MigrationError, match=rf"{first.version:04d}_{first.name}.*edited"):
        migrate(empty_db_url)
    assert applied_rows(empty_db_url) == before
    # The failed run released its lock: another replica is not left waiting forever.
    assert advisory_locks_held(empty_db_url) == 0
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
        assert row is not None and row[0] is True
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
