"""The ``briefbot`` command line: ingest, inspect, preview, search, send and run."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from bot import __version__
from bot.app import Core, build_core
from bot.brief import assemble_brief
from bot.config import load_settings
from bot.delivery import Outcome
from bot.dispatch import Audience, SendResult
from bot.domain import DeliveryStatus, Item, TargetKind
from bot.errors import BriefbotError, ConfigError
from bot.importer import ImportReport, import_paths
from bot.logs import scrub, setup_logging
from bot.scheduler import next_runs_from_config
from bot.search import search
from bot.service import build_service, require_platforms, run_until_signalled, start_platforms

PLATFORMS = ("telegram", "wechat", "markdown")
Handler = Callable[[argparse.Namespace, Core], int]


class CliError(BriefbotError):
    """A command cannot do what was asked; exit code 1 with this message."""


def parse_date(text: str) -> dt.date:
    """Accept YYYY-MM-DD or YYYYMMDD."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)")


def item_json(item: Item) -> dict[str, Any]:
    return {
        "date": item.date.isoformat(),
        "title": item.title,
        "summary": item.summary,
        "links": [{"label": link.label, "url": link.url} for link in item.links],
        "tags": list(item.tags),
        "section": item.section,
        "position": item.position,
    }


def emit_json(data: object, out: TextIO | None = None) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2), file=out or sys.stdout)


def resolve_date(core: Core, requested: dt.date | None) -> dt.date:
    """The requested day, or the latest day with items up to today."""
    if requested is not None:
        return requested
    latest = core.store.latest_date(on_or_before=core.today()) or core.store.latest_date()
    if latest is None:
        raise CliError("the store has no items yet: run `briefbot ingest PATH` first")
    return latest


def _progress(files: Iterable[Path]) -> Iterable[Path]:
    items = list(files)
    # A bar only for long work and only on a terminal (tqdm disables itself when not a TTY).
    bar: Iterable[Path] = tqdm(
        items, desc="ingest", unit="file", disable=None if len(items) > 5 else True
    )
    return bar


# -- verbs ---------------------------------------------------------------------------------


def print_import_report(report: ImportReport, *, as_json: bool) -> None:
    total = report.total()
    if as_json:
        emit_json(
            {
                "files": [
                    {
                        "path": f.path,
                        "added": f.counts.added,
                        "updated": f.counts.updated,
                        "unchanged": f.counts.unchanged,
                        "removed": f.counts.removed,
                        "dates": [d.isoformat() for d in f.dates],
                        "error": f.error,
                    }
                    for f in report.files
                ],
                "added": total.added,
                "updated": total.updated,
                "unchanged": total.unchanged,
                "removed": total.removed,
                "failed": len(report.failed),
            }
        )
        return
    for failure in report.failed:
        print(f"error: {failure.error}", file=sys.stderr)
    print(
        f"{len(report.files)} file(s): {total.added} item(s) added, {total.updated} updated, "
        f"{total.unchanged} unchanged, {total.removed} removed, {len(report.failed)} file(s) failed"
    )


def cmd_ingest(args: argparse.Namespace, core: Core) -> int:
    report = import_paths(core.store, args.paths, feed_date=args.date, progress=_progress)
    print_import_report(report, as_json=args.json)
    return 1 if report.failed else 0


def cmd_items(args: argparse.Namespace, core: Core) -> int:
    date = resolve_date(core, args.date)
    items = core.store.items_on(date)
    if args.json:
        emit_json({"date": date.isoformat(), "items": [item_json(i) for i in items]})
        return 0
    if not items:
        print(f"no items on {date.isoformat()}")
        return 0
    print(f"{date.isoformat()}: {len(items)} item(s)")
    for n, item in enumerate(items, 1):
        tags = f"  [{', '.join(item.tags)}]" if item.tags else ""
        print(f"{n:>3}. {item.title}{tags}")
        for link in item.links:
            print(f"     {link.label}: {link.url}")
    return 0


def cmd_preview(args: argparse.Namespace, core: Core) -> int:
    date = resolve_date(core, args.date)
    brief = assemble_brief(core.store, date, core.settings.brief)
    if brief is None:
        raise CliError(f"no items on {date.isoformat()}: nothing to preview")
    platform = args.platform
    limits = None if platform == "markdown" else core.limits(platform)
    messages = core.renderer.brief(brief, platform, limits)
    if args.json:
        emit_json(
            {
                "date": date.isoformat(),
                "platform": platform,
                "title": brief.title,
                "messages": [m.text for m in messages],
            }
        )
        return 0
    for n, message in enumerate(messages, 1):
        if len(messages) > 1:
            print(f"──── message {n}/{len(messages)} ────")
        print(message.text)
    return 0


def cmd_search(args: argparse.Namespace, core: Core) -> int:
    limit = args.limit or core.settings.search.limit
    results = search(
        core.store, args.query, limit=limit, max_length=core.settings.search.max_query_length
    )
    if args.json:
        emit_json(
            {
                "query": args.query,
                "results": [
                    {
                        "date": r.item.date.isoformat(),
                        "title": r.item.title,
                        "links": [{"label": lk.label, "url": lk.url} for lk in r.item.links],
                        "score": r.score,
                    }
                    for r in results
                ],
            }
        )
        return 0
    if not results:
        print(f"no items match {args.query!r}")
        return 0
    for r in results:
        url = r.item.primary_url or ""
        print(f"{r.item.date.isoformat()}  {r.item.title}\n            {url}")
    return 0


def _platform_names(requested: str | None) -> tuple[str, ...]:
    return (requested,) if requested else ("telegram", "wechat")


async def _send(args: argparse.Namespace, core: Core) -> SendResult:
    service = build_service(core, platforms=_platform_names(args.platform), chat=False)
    if args.platform:
        require_platforms(service, [args.platform])
    elif not service.platforms:
        require_platforms(service, ["telegram"])
    date = resolve_date(core, args.date)
    bar = None
    try:
        if not args.dry_run:
            await start_platforms(service, polling=False)

        def progress(_outcome: Outcome) -> None:
            if bar is not None:
                bar.update(1)

        if not args.dry_run and not args.json:
            bar = tqdm(desc=f"send {date.isoformat()}", unit="chat", disable=None)
        return await service.send(
            date,
            platform=args.platform,
            audience=Audience(args.audience),
            chat_ids=args.target or (),
            force=args.force,
            dry_run=args.dry_run,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
        await service.stop()


def cmd_send(args: argparse.Namespace, core: Core) -> int:
    result = asyncio.run(_send(args, core))
    summary = result.summary()
    if args.json:
        outcomes = (
            [
                {
                    "platform": p.target.platform,
                    "chat": p.target.chat_id,
                    "status": p.status.value,
                    "parts": p.parts,
                }
                for p in result.plan
            ]
            if result.report is None
            else [
                {
                    "platform": o.target.platform,
                    "chat": o.target.chat_id,
                    "status": o.status.value,
                    "parts_sent": o.parts_sent,
                    "error": o.error,
                }
                for o in result.report.outcomes
            ]
        )
        emit_json(
            {
                "date": result.date.isoformat(),
                "title": result.title,
                "dry_run": result.report is None,
                "summary": summary,
                "targets": outcomes,
                "unresolved": result.unresolved,
            }
        )
    else:
        print(f"{result.date.isoformat()}  {result.title}")
        if result.report is None:
            for p in result.plan:
                print(f"  would send {p.parts} message(s) to {p.target.key} ({p.status.value})")
        else:
            for o in result.report.outcomes:
                if o.error and o.status is not DeliveryStatus.SKIPPED:
                    print(f"  {o.target.key}: {o.status.value}: {scrub(o.error)}", file=sys.stderr)
            print(
                "sent {sent}, failed {failed}, gone {gone}, skipped {skipped} (already delivered), "
                "pending {pending}".format(
                    **{
                        k: summary.get(k, 0)
                        for k in ("sent", "failed", "gone", "skipped", "pending")
                    }
                )
            )
        for problem in result.unresolved:
            print(f"  warning: {problem}", file=sys.stderr)
    failed = summary.get("failed", 0) + summary.get("unresolved", 0)
    return 1 if failed else 0


def cmd_subscribers(args: argparse.Namespace, core: Core) -> int:
    store = core.store
    if args.action == "add":
        kind = TargetKind(args.kind)
        added = store.add_subscriber(args.platform, args.chat_id, kind, name=args.name or "")
        print(f"{args.platform}:{args.chat_id} {'added' if added else 'already subscribed'}")
        return 0
    if args.action == "remove":
        removed = store.deactivate_subscriber(args.platform, args.chat_id, "removed by admin")
        print(f"{args.platform}:{args.chat_id} {'removed' if removed else 'was not subscribed'}")
        return 0 if removed else 1
    rows = store.subscribers(args.platform, active_only=not args.all)
    if args.json:
        emit_json(
            {
                "subscribers": [
                    {
                        "platform": s.platform,
                        "chat_id": s.chat_id,
                        "kind": s.kind.value,
                        "name": s.name,
                        "language": s.language,
                        "active": s.active,
                        "since": s.created_at.isoformat(),
                    }
                    for s in rows
                ]
            }
        )
        return 0
    for s in rows:
        state = "" if s.active else f"  (inactive: {s.inactive_reason})"
        print(f"{s.platform:<9} {s.chat_id:<16} {s.kind.value:<10} {s.name}{state}")
    print(f"{len(rows)} subscriber(s)")
    return 0


def cmd_run(args: argparse.Namespace, core: Core) -> int:
    service = build_service(core)
    if not service.platforms:
        require_platforms(service, ["telegram"])
    asyncio.run(run_until_signalled(service))
    return 0


def cmd_status(args: argparse.Namespace, core: Core) -> int:
    store = core.store
    status: dict[str, Any] = {
        "items": store.count_items(),
        "latest_brief": str(latest) if (latest := store.latest_date()) else None,
        "subscribers": {p: len(store.subscribers(p)) for p in ("telegram", "wechat")},
        "channels": len(core.settings.telegram.channels),
        "groups": len(core.settings.wechat.groups),
        "deliveries": {},
        "next_runs": {},
    }
    settings = core.settings
    platforms = [
        name
        for name, configured in (
            ("telegram", bool(settings.telegram_token) or bool(settings.telegram.channels)),
            ("wechat", bool(settings.wechat.endpoint)),
        )
        if configured
    ]
    now = dt.datetime.now(settings.tz)
    for job, when in next_runs_from_config(settings, platforms, now).items():
        status["next_runs"][job.removeprefix("brief:")] = when.isoformat() if when else None
    for platform in ("telegram", "wechat"):
        last = store.last_delivery_date(platform)
        if last is None:
            continue
        counts: dict[str, int] = {}
        for row in store.deliveries(last, platform):
            counts[row.status.value] = counts.get(row.status.value, 0) + 1
        status["deliveries"][platform] = {"date": last.isoformat(), **counts}
    if args.json:
        emit_json(status)
        return 0
    print(f"items: {status['items']} (latest brief {status['latest_brief'] or '-'})")
    subs = status["subscribers"]
    print(
        f"telegram: {subs['telegram']} subscriber(s), {status['channels']} channel(s); "
        f"wechat: {status['groups']} group(s), {subs['wechat']} subscriber(s)"
    )
    for platform, d in status["deliveries"].items():
        rest = ", ".join(f"{k} {v}" for k, v in d.items() if k != "date")
        print(f"last delivery on {platform}: {d['date']}: {rest}")
    if not status["next_runs"]:
        print("no schedule: configure a Telegram token or channels, or a WeChat endpoint")
    for job, when in status["next_runs"].items():
        print(f"next run of {job}: {when}")
    return 0


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="briefbot",
        description="Keep a daily AI news brief (简报), render it per platform, deliver it to "
        "Telegram and WeChat, and answer keyword queries.",
    )
    parser.add_argument("--version", action="version", version=f"briefbot {__version__}")
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="how much to log on stderr (default: INFO for run, ERROR for demo, else WARNING)",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $BRIEFBOT_CONFIG or config/briefbot.toml)",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL (default: $BRIEFBOT_DATABASE_URL or a SQLite file in the data folder)",
    )
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    p = sub.add_parser("ingest", help="import Markdown, .txt archives and RSS/Atom feeds")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, or feed URLs (http/https)"
    )
    p.add_argument("--date", type=parse_date, help="put feed entries into this day's pool")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("items", help="list a day's stored items")
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_items)

    p = sub.add_parser("preview", help="render a day's brief for a platform")
    p.add_argument("--platform", choices=PLATFORMS, default="telegram")
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_preview)

    p = sub.add_parser("search", help="find stored items by keyword (中文 or English)")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=0, help="how many results (default from config)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("send", help="deliver a day's brief through the ledger (each chat once)")
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--platform", choices=("telegram", "wechat"), help="only this platform")
    p.add_argument(
        "--audience",
        choices=[a.value for a in Audience],
        default="all",
        help="channels/groups from config, subscribers, or all (default)",
    )
    p.add_argument(
        "--target",
        action="append",
        metavar="ID",
        help="only this chat id (repeatable; needs --platform)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be sent, send nothing")
    p.add_argument("--force", action="store_true", help="send again to chats that already have it")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_send)

    p = sub.add_parser("subscribers", help="list, add or remove subscribers")
    subs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sp = subs.add_parser("list", help="list subscribers")
    sp.add_argument("--platform", choices=("telegram", "wechat"))
    sp.add_argument("--all", action="store_true", help="include inactive ones")
    sp.add_argument("--json", action="store_true", help="print JSON")
    for action, text in (("add", "subscribe a chat"), ("remove", "unsubscribe a chat")):
        sp = subs.add_parser(action, help=text)
        sp.add_argument("chat_id", metavar="CHAT_ID")
        sp.add_argument("--platform", choices=("telegram", "wechat"), default="telegram")
        if action == "add":
            sp.add_argument("--kind", choices=[k.value for k in TargetKind], default="subscriber")
            sp.add_argument("--name", help="a label for people")
    p.set_defaults(handler=cmd_subscribers)

    p = sub.add_parser("run", help="run the bots (Telegram, WeChat) until SIGINT/SIGTERM")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("status", help="subscribers, groups and the last delivery per platform")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "demo",
        help="run the whole service against loopback Telegram and WeChat servers (no accounts)",
    )
    p.set_defaults(handler=None)  # handled in main(): it needs no configured store
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        # `run` logs its events; the demo's transcript is its output, so only errors show
        default_level = {"run": "INFO", "demo": "ERROR"}.get(args.verb, "WARNING")
        setup_logging(
            default_level if args.log_level is None else args.log_level,
            secrets=[settings.telegram_token.reveal(), settings.wechat_token.reveal()],
        )
        if args.verb == "demo":  # its own throwaway store: the configured one is not touched
            from bot.demo import run_demo

            return asyncio.run(run_demo())
        core = build_core(settings, database_url=args.db)
    except BriefbotError as exc:
        print(f"briefbot: {scrub(str(exc))}", file=sys.stderr)
        return 2
    try:
        handler: Handler = args.handler
        return handler(args, core)
    except ConfigError as exc:
        print(f"briefbot: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except BriefbotError as exc:
        print(f"briefbot: {scrub(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("briefbot: interrupted", file=sys.stderr)
        return 130
    finally:
        core.store.close()
