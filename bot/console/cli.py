"""The ``briefbot console`` verb: serve the editors' web console, and manage its admins.

Only the standard library at the top: the CLI builds its parser for every command.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``console`` (``serve`` when no action is given, ``add-admin``, ``list-admins``)."""
    p = subparsers.add_parser(
        "console",
        help="the editors' web console: serve it, or manage who may log in",
        description="Serve the editors' web console (the default action), or manage its admins.",
    )
    p.set_defaults(handler=cmd_console_serve, listen=None)
    actions = p.add_subparsers(dest="console_action", metavar="ACTION")

    sp = actions.add_parser(
        "serve",
        help="serve the console at [console] listen until SIGINT/SIGTERM (the default)",
        description="Serve the console until SIGINT/SIGTERM. `briefbot run` also serves it "
        "when [console] listen is set; this serves it alone (test sends go through the "
        "[editors] platform when it is configured).",
    )
    sp.add_argument(
        "--listen", metavar="HOST:PORT", help="where to listen (default: [console] listen)"
    )
    sp.set_defaults(handler=cmd_console_serve)

    sp = actions.add_parser(
        "add-admin",
        help="create an admin who may log in (asks for the password)",
        description="Create a console admin. The password is asked twice (or read from the "
        "first line of stdin with --password-stdin) and kept only as a scrypt hash.",
    )
    sp.add_argument("name", metavar="NAME", help="the login name (letters, digits, _ . @ -)")
    sp.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (for scripts)",
    )
    sp.add_argument(
        "--reset",
        action="store_true",
        help="give an existing admin a new password (and unlock it; its sessions end)",
    )
    sp.set_defaults(handler=cmd_console_add_admin)

    sp = actions.add_parser(
        "list-admins",
        help="list the console's admins",
        description="List the console's admins, when they were created, and any lock.",
    )
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(handler=cmd_console_list_admins)


def _read_password(from_stdin: bool) -> str:
    from bot.errors import UsageError

    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def cmd_console_add_admin(args: argparse.Namespace, core: Core) -> int:
    from bot.console.auth import add_admin, check_new_password, valid_admin_name
    from bot.errors import UsageError

    if not valid_admin_name(args.name):
        raise UsageError(f"invalid admin name {args.name!r}: letters, digits, _ . @ - (1-64)")
    password = _read_password(args.password_stdin)
    check_new_password(password)
    created = add_admin(core.store, args.name, password, reset=args.reset)
    print(f"{'created' if created else 'reset'} console admin {args.name}")
    return 0


def cmd_console_list_admins(args: argparse.Namespace, core: Core) -> int:
    from bot.console.auth import list_admins

    admins = list_admins(core.store)
    if args.json:
        data = [
            {
                "name": a.name,
                "created_at": a.created_at.isoformat(),
                "failed_logins": a.failed_logins,
                "locked_until": a.locked_until.isoformat() if a.locked_until else None,
            }
            for a in admins
        ]
        print(json.dumps({"admins": data}, ensure_ascii=False, indent=2))
        return 0
    if not admins:
        print("no console admin yet: briefbot console add-admin NAME")
        return 0
    for a in admins:
        lock = f"  locked until {a.locked_until.isoformat()}" if a.locked_until else ""
        print(f"{a.name}  created {a.created_at.date().isoformat()}{lock}")
    return 0


def cmd_console_serve(args: argparse.Namespace, core: Core) -> int:
    from bot.config import parse_listen
    from bot.errors import ConfigError

    listen = getattr(args, "listen", None) or core.settings.console.listen
    if not listen:
        raise ConfigError(
            'the console has no address: set [console] listen (e.g. "127.0.0.1:8081") or '
            "pass --listen"
        )
    try:
        host, port = parse_listen(listen)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("[site]", "[console]")) from None
    asyncio.run(_serve(core, host, port))
    return 0


async def _serve(core: Core, host: str, port: int) -> None:
    import logging
    import signal

    from bot.console.auth import list_admins
    from bot.console.server import ConsoleServer
    from bot.service import Service, build_service, start_platforms

    log = logging.getLogger("briefbot.console")
    service: Service | None = None
    editors = core.settings.editors.platform
    if editors:
        built = build_service(core, platforms=[editors], receive=False)
        if editors in built.platforms:
            await start_platforms(built)
            service = built
        else:
            log.warning("test sends are off: the editors' platform %s is not configured", editors)
    server = ConsoleServer(core, host=host, port=port, service=service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        if not await asyncio.to_thread(list_admins, core.store):
            print("no console admin yet: briefbot console add-admin NAME", file=sys.stderr)
        print(f"console at {server.url} (Ctrl-C stops it)", file=sys.stderr)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await server.stop()
        if service is not None:
            await service.stop(grace=5)
