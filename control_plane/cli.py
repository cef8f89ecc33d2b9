"""``vigil``: the control plane's command line.

vigil migrate                  apply pending migrations
vigil serve [--host H --port P --workers N]
vigil org create NAME          prints the new org id
vigil token create --org ID [--name NAME]   prints the token once
vigil token list --org ID      an org's tokens: id, prefix, last use, revoked
vigil token revoke --id ID     revoke a token at once
vigil worker [--metrics-port P --metrics-host H]   the background worker (evaluation, sweeps)
vigil keys rotate [--batch-size N]   rewrap every sealed secret under VIGIL_SECRET_PRIMARY
vigil keys status              how many sealed values sit on each key id
vigil dev                      the whole local system (what `make dev` runs)
vigil dev env                  the dev stack's settings as shell exports
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Callable, Sequence

import psycopg
from psycopg.rows import dict_row

from control_plane.core.logs import configure_logging
from control_plane.db.migrate import migrate
from control_plane.security import rotation
from control_plane.security.sealing import Sealer
from control_plane.settings import SettingsError, get_settings, settings_from_env


def _cmd_migrate(_: argparse.Namespace) -> int:
    settings = get_settings()
    applied = migrate(settings.database.url)
    print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
    return 0


# Seconds ``vigil serve`` waits for requests in flight once told to stop.
SHUTDOWN_GRACE_S = 10


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from control_plane.core.http_protocols import PROTOCOL

    settings = get_settings()
    uvicorn.run(
        "control_plane.asgi:app",
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        # uvicorn's own protocol, answering what its parser refuses in the error envelope.
        http=PROTOCOL,
        # Lease long-polls end at once on SIGTERM (core/draining.py); anything else still in
        # flight gets this long before the process exits anyway.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return 0


async def _org_create(name: str) -> uuid.UUID:
    from control_plane.domain.orgs.service import create_org

    async with await psycopg.AsyncConnection.connect(
        get_settings().database.url, autocommit=True
    ) as conn:
        return await create_org(conn, name)


async def _token_create(org: uuid.UUID, name: str) -> str:
    from control_plane.domain.orgs.service import create_token

    settings = get_settings()
    async with await psycopg.AsyncConnection.connect(
        settings.database.url, autocommit=True
    ) as conn:
        return (await create_token(conn, settings.security.token_key, org, name)).token


async def _token_list(org: uuid.UUID) -> list[dict[str, object]]:
    from control_plane.domain.orgs.service import list_tokens

    async with await psycopg.AsyncConnection.connect(
        get_settings().database.url, autocommit=True, row_factory=dict_row
    ) as conn:
        return await list_tokens(conn, org)


async def _token_revoke(token_id: uuid.UUID) -> dict[str, object] | None:
    from redis.asyncio import Redis

    from control_plane.core.ratelimit import broadcast_revocation
    from control_plane.domain.orgs.service import revoke_token

    settings = get_settings()
    async with await psycopg.AsyncConnection.connect(
        settings.database.url, autocommit=True, row_factory=dict_row
    ) as conn:
        row = await revoke_token(conn, token_id)
    if row is not None:
        # API processes that remember the key refuse it at once (core/keycache.py).
        redis = Redis.from_url(settings.redis.url)
        try:
            await broadcast_revocation(redis, settings, token_id)
        finally:
            await redis.aclose()
    return row


def _uuid_arg(raw: str, what: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        print(f"error: {raw!r} is not {what}", file=sys.stderr)
        return None


def _cmd_token_list(args: argparse.Namespace) -> int:
    org = _uuid_arg(args.org, "an org id")
    if org is None:
        return 2
    for row in asyncio.run(_token_list(org)):
        state = f"revoked {row['revoked_at']:%Y-%m-%dT%H:%M:%SZ}" if row["revoked_at"] else "live"
        used = row["last_used_at"]
        last = f"{used:%Y-%m-%dT%H:%M:%SZ}" if used else "never"
        print(f"{row['id']}  {row['prefix']}…  {row['name']!s:<16} last used {last}  {state}")
    return 0


def _cmd_token_revoke(args: argparse.Namespace) -> int:
    token_id = _uuid_arg(args.id, "a token id (see `vigil token list --org ID`)")
    if token_id is None:
        return 2
    row = asyncio.run(_token_revoke(token_id))
    if row is None:
        print(f"error: no API token {token_id}", file=sys.stderr)
        return 1
    print(
        f"revoked {row['id']} ({row['prefix']}…, org {row['org_id']}): it no longer authenticates"
    )
    return 0


def _cmd_org_create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 for c in name):
        print("error: an org name is 1-200 printable characters", file=sys.stderr)
        return 2
    print(asyncio.run(_org_create(name)))
    return 0


async def _user_create(
    email: str, name: str, password: str, org: uuid.UUID | None, role: str
) -> uuid.UUID:
    from control_plane.domain.users.service import add_member, create_user

    async with (
        await psycopg.AsyncConnection.connect(get_settings().database.url) as conn,
        conn.transaction(),
    ):
        user_id = await create_user(conn, email, name, password)
        if org is not None:
            await add_member(conn, org, user_id, role)
        return user_id


def _cmd_user_create(args: argparse.Namespace) -> int:
    """``vigil user create --email E --name N [--org ID --role OWNER]``; the password is read
    from stdin (never from the command line, where other users of the machine see it)."""
    password = sys.stdin.readline().rstrip("\n")
    org = None
    if args.org:
        try:
            org = uuid.UUID(args.org)
        except ValueError:
            print(f"error: --org {args.org!r} is not an org id", file=sys.stderr)
            return 2
    try:
        user_id = asyncio.run(_user_create(args.email, args.name, password, org, args.role))
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except psycopg.errors.ForeignKeyViolation:
        print(f"error: org {org} does not exist", file=sys.stderr)
        return 1
    print(user_id)
    return 0


def _cmd_token_create(args: argparse.Namespace) -> int:
    try:
        org = uuid.UUID(args.org)
    except ValueError:
        print(f"error: --org {args.org!r} is not an org id", file=sys.stderr)
        return 2
    try:
        token = asyncio.run(_token_create(org, args.name))
    except LookupError:
        print(f"error: org {org} does not exist", file=sys.stderr)
        return 1
    print(token)
    return 0


async def _keys(args: argparse.Namespace) -> int:
    settings = get_settings()
    sec = settings.security
    async with await psycopg.AsyncConnection.connect(
        settings.database.url, autocommit=True
    ) as conn:
        if args.keys_cmd == "status":
            usage = await rotation.key_usage(conn)
            print(
                "\n".join(rotation.format_usage(usage, list(sec.sealing_keys), sec.primary_key_id))
            )
            return 0
        sealer = Sealer(sec.sealing_keys, sec.primary_key_id)
        report = await rotation.rotate_keys(conn, sealer, batch_size=args.batch_size)
    print("\n".join(rotation.format_report(report)))
    if report.failures:
        print(
            f"error: {len(report.failures)} sealed value(s) could not be rewrapped (listed above);"
            " configure their key ids in VIGIL_SECRET_KEYS and run again",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    return asyncio.run(_keys(args))


def _cmd_worker(args: argparse.Namespace) -> int:
    from control_plane.worker.main import run_worker

    port = args.metrics_port
    if port is None and os.environ.get("VIGIL_WORKER_METRICS_PORT"):
        port = int(os.environ["VIGIL_WORKER_METRICS_PORT"])
    host = args.metrics_host or os.environ.get("VIGIL_WORKER_METRICS_HOST") or "127.0.0.1"
    return run_worker(get_settings(), metrics_port=port, metrics_host=host)


def _cmd_dev(args: argparse.Namespace) -> int:
    from control_plane.dev.stack import run_dev

    return int(run_dev(args))


def _cmd_dev_env(_: argparse.Namespace) -> int:
    from control_plane.dev.envfile import DevFile, dev_dir, shell_exports

    path = dev_dir() / "dev.env"
    if not path.exists():
        print(f"error: no dev stack in {path.parent}; run `make dev` first", file=sys.stderr)
        return 1
    print("\n".join(shell_exports(DevFile.load(path).values)))
    return 0


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil", description="Vigil control plane")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(fn=_cmd_migrate)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", help="address to bind (default: VIGIL_HOST, else 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="port to listen on (default: VIGIL_PORT, else 8000)"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (default: 1)"
    )
    serve.set_defaults(fn=_cmd_serve)

    worker = sub.add_parser(
        "worker", help="run the background worker (arq); it outlives Redis restarts"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        help="serve the worker's Prometheus metrics on PORT "
        "(default: VIGIL_WORKER_METRICS_PORT, else off)",
    )
    worker.add_argument(
        "--metrics-host",
        help="address the metrics endpoint binds (default: VIGIL_WORKER_METRICS_HOST, "
        "else 127.0.0.1; 0.0.0.0 in a container)",
    )
    worker.set_defaults(fn=_cmd_worker)

    org = sub.add_parser("org", help="manage orgs").add_subparsers(dest="org_cmd", required=True)
    oc = org.add_parser("create", help="create an org and print its id")
    oc.add_argument("name", help="the org's display name (1-200 printable characters)")
    oc.set_defaults(fn=_cmd_org_create)

    usr = sub.add_parser("user", help="manage users").add_subparsers(dest="user_cmd", required=True)
    uc = usr.add_parser(
        "create", help="create a user (password on stdin) and print its id; optionally a member"
    )
    uc.add_argument("--email", required=True)
    uc.add_argument("--name", required=True)
    uc.add_argument("--org", help="id of an org to make the user a member of")
    uc.add_argument("--role", default="OWNER", choices=["OWNER", "ADMIN", "MEMBER", "VIEWER"])
    uc.set_defaults(fn=_cmd_user_create)

    tok = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="tok_cmd", required=True
    )
    tc = tok.add_parser("create", help="create an API token for an org; printed once")
    tc.add_argument("--org", required=True, help="id of the org the token acts for")
    tc.add_argument("--name", default="cli", help="a label to tell tokens apart (default: cli)")
    tc.set_defaults(fn=_cmd_token_create)
    tl = tok.add_parser("list", help="list an org's API tokens (ids, prefixes, last use)")
    tl.add_argument("--org", required=True, help="id of the org")
    tl.set_defaults(fn=_cmd_token_list)
    tr = tok.add_parser("revoke", help="revoke an API token now: its next request is a 401")
    tr.add_argument("--id", required=True, help="the token's id (from `vigil token list`)")
    tr.set_defaults(fn=_cmd_token_revoke)

    keys = sub.add_parser("keys", help="sealing keys").add_subparsers(
        dest="keys_cmd", required=True
    )
    kr = keys.add_parser(
        "rotate",
        help="rewrap every sealed secret under the primary key (idempotent); "
        "exits 1 if any value cannot be opened",
    )
    kr.add_argument(
        "--batch-size",
        type=_positive_int,
        default=rotation.DEFAULT_BATCH_SIZE,
        help="rows per transaction",
    )
    kr.set_defaults(fn=_cmd_keys)
    keys.add_parser("status", help="count sealed values per key id").set_defaults(fn=_cmd_keys)

    dev = sub.add_parser(
        "dev",
        help="run the whole system locally (what `make dev` runs); `vigil dev env` prints its "
        "settings as shell exports",
    )
    dev.add_argument("--port", type=int, default=0, help="API port (default: 8000 or a free one)")
    dev.set_defaults(fn=_cmd_dev)
    dev_sub = dev.add_subparsers(dest="dev_cmd")
    dev_sub.add_parser(
        "env",
        help="print the running dev stack's settings as `export` lines: "
        'eval "$(vigil dev env)" lets this shell use the CLI and the README\'s curl lines',
    ).set_defaults(fn=_cmd_dev_env)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main", "settings_from_env"]
