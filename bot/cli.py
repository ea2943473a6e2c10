"""The ``briefbot`` command line: ingest, inspect, preview, search, send and run."""

from __future__ import annotations

import argparse
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
from bot.domain import Item
from bot.errors import BriefbotError
from bot.importer import ImportReport, import_paths
from bot.ingest import SAMPLES_DIR
from bot.search import search

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
                        "dates": [d.isoformat() for d in f.dates],
                        "error": f.error,
                    }
                    for f in report.files
                ],
                "added": total.added,
                "updated": total.updated,
                "unchanged": total.unchanged,
                "failed": len(report.failed),
            }
        )
        return
    for failure in report.failed:
        print(f"error: {failure.error}", file=sys.stderr)
    print(
        f"{len(report.files)} file(s): {total.added} item(s) added, {total.updated} updated, "
        f"{total.unchanged} unchanged, {len(report.failed)} file(s) failed"
    )


def cmd_ingest(args: argparse.Namespace, core: Core) -> int:
    paths = [Path(p) for p in args.paths]
    report = import_paths(core.store, paths, feed_date=args.date, progress=_progress)
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
    results = search(core.store, args.query, limit=limit)
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


def cmd_demo(args: argparse.Namespace, core: Core) -> int:
    report = import_paths(core.store, [SAMPLES_DIR], progress=_progress)
    print_import_report(report, as_json=False)
    date = resolve_date(core, None)
    brief = assemble_brief(core.store, date, core.settings.brief)
    assert brief is not None
    for platform in PLATFORMS:
        limits = None if platform == "markdown" else core.limits(platform)
        messages = core.renderer.brief(brief, platform, limits)
        print(f"\n════ {platform}: {len(messages)} message(s) ════")
        for n, message in enumerate(messages, 1):
            if len(messages) > 1:
                print(f"──── message {n}/{len(messages)} ────")
            print(message.text)
    print("\n════ search 芯片 ════")
    for r in search(core.store, "芯片", limit=3):
        print(f"{r.item.date.isoformat()}  {r.item.title}  {r.item.primary_url or ''}")
    return 1 if report.failed else 0


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="briefbot",
        description="Keep a daily AI news brief (简报), render it per platform, deliver it to "
        "Telegram and WeChat, and answer keyword queries.",
    )
    parser.add_argument("--version", action="version", version=f"briefbot {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="settings file (default: $BRIEFBOT_CONFIG or config/briefbot.toml)"
    )
    parser.add_argument(
        "--db", metavar="URL", help="SQLAlchemy database URL (default: $BRIEFBOT_DATABASE_URL or a SQLite file in the data folder)"
    )
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    p = sub.add_parser("ingest", help="import Markdown, .txt archives and RSS/Atom feeds")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
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

    p = sub.add_parser("demo", help="load the sample content and show a brief for each platform")
    p.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        core = build_core(settings, database_url=args.db)
    except BriefbotError as exc:
        print(f"briefbot: {exc}", file=sys.stderr)
        return 2
    try:
        handler: Handler = args.handler
        return handler(args, core)
    except BriefbotError as exc:
        print(f"briefbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("briefbot: interrupted", file=sys.stderr)
        return 130
    finally:
        core.store.close()
