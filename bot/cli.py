"""The ``briefbot`` command line: ingest, inspect, preview, search, send and run."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot import __version__
from bot.errors import BriefbotError, ConfigError, UsageError
from bot.platforms import names as platform_names

if TYPE_CHECKING:  # the verbs import what they use: `briefbot --help` stays fast
    from bot.broadcast import SendResult
    from bot.core import Core
    from bot.corrections import CorrectionReport
    from bot.ingest.importer import ImportReport

Handler = Callable[[argparse.Namespace, "Core"], int]
DOCUMENT_FORMATS = ("markdown",)
# kept here as text so that building the parser imports nothing heavy (a test compares them
# with bot.broadcast.Audience and bot.domain.TargetKind)
AUDIENCES = ("all", "channels", "subscribers")
TARGET_KINDS = ("channel", "subscriber", "group")


def parse_date(text: str) -> dt.date:
    """Accept YYYY-MM-DD or YYYYMMDD."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)")


def whole_number(text: str) -> int:
    """A count on the command line: 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def emit_json(data: object, out: TextIO | None = None) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2), file=out or sys.stdout)


def resolve_date(core: Core, requested: dt.date | None) -> dt.date:
    """The requested day, or the latest day (see :func:`bot.reports.latest_day`)."""
    from bot.reports import latest_day

    if requested is not None:
        return requested
    latest = latest_day(core.store, core.today())
    if latest is None:
        raise UsageError("the store has no items yet: run `briefbot ingest PATH` first")
    return latest


def _progress(files: Iterable[Path]) -> Iterable[Path]:
    from tqdm import tqdm

    items = list(files)
    # A bar only for long work and only on a terminal (tqdm disables itself when not a TTY).
    bar: Iterable[Path] = tqdm(
        items, desc="ingest", unit="file", disable=None if len(items) > 5 else True
    )
    return bar


# -- verbs ---------------------------------------------------------------------------------


def print_import_report(
    report: ImportReport, *, as_json: bool, warnings: Sequence[str] = ()
) -> None:
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
                "warnings": list(warnings),
            }
        )
        return
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for failure in report.failed:
        print(f"error: {failure.error}", file=sys.stderr)
    print(
        f"{len(report.files)} file(s): {total.added} item(s) added, {total.updated} updated, "
        f"{total.unchanged} unchanged, {total.removed} removed, {len(report.failed)} file(s) failed"
    )


def cmd_ingest(args: argparse.Namespace, core: Core) -> int:
    from bot.editorial import after_ingest
    from bot.ingest.importer import import_paths

    report = import_paths(core.store, args.paths, feed_date=args.date, progress=_progress)
    # an approved brief whose items changed is a draft again; a published one needs `correct`
    warnings = after_ingest(core, [d for f in report.files for d in f.dates])
    print_import_report(report, as_json=args.json, warnings=warnings)
    return 1 if report.failed else 0


async def _correct(args: argparse.Namespace, core: Core) -> CorrectionReport:
    from bot.corrections import correct
    from bot.service import build_service, start_platforms

    service = build_service(core, receive=False)
    try:
        if not args.dry_run:
            await start_platforms(service)
        return await correct(
            service, resolve_date(core, args.date), dry_run=args.dry_run, actor=args.by
        )
    finally:
        await service.stop()


def cmd_correct(args: argparse.Namespace, core: Core) -> int:
    report = asyncio.run(_correct(args, core))
    if args.json:
        emit_json(report.as_json())
    else:
        day = report.date.isoformat()
        if not report.changes:
            print(f"{day}: nothing to correct (readers have the current text)")
            return 0
        for change in report.changes:
            what = change.item.title if change.item else f"withdrawn: {change.old_title}"
            print(f"  changed: {change.number}. {what}")
        for key, outcome in report.targets.items():
            print(f"  {key}: {outcome}")
        verb = "would correct" if report.dry_run else "corrected"
        print(
            f"{day}: {verb} {len(report.changes)} item(s) at {len(report.targets)} target(s): "
            f"{report.edited} message(s) edited in place, {report.notes} correction note(s)"
        )
    failed = [v for v in report.targets.values() if v.startswith("failed")]
    return 1 if failed else 0


def cmd_approve(args: argparse.Namespace, core: Core) -> int:
    from bot.editorial import approve

    date = resolve_date(core, args.date)
    approved = approve(core, date, actor=args.by)
    if args.json:
        emit_json(
            {
                "date": date.isoformat(),
                "state": approved.state.value,
                "approved_by": approved.approved_by,
                "approved_at": approved.approved_at.isoformat() if approved.approved_at else None,
                "content_hash": approved.content_hash,
            }
        )
        return 0
    print(f"approved the brief of {date.isoformat()} (by {approved.approved_by})")
    return 0


def cmd_items(args: argparse.Namespace, core: Core) -> int:
    from bot.reports import item_json

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
    from bot.brief import assemble_brief

    date = resolve_date(core, args.date)
    brief = assemble_brief(core.store, date, core.settings.brief)
    if brief is None:
        raise UsageError(f"no items on {date.isoformat()}: nothing to preview")
    platform = args.platform
    limits = None if platform in DOCUMENT_FORMATS else core.limits(platform)
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
    if args.reindex:
        return _reindex(core, as_json=args.json)
    if args.query is None:
        raise UsageError("search needs a QUERY (or --reindex)")
    from bot.search.snippet import plain

    page = core.search(args.query, limit=args.limit or None, offset=args.offset)
    if args.json:
        emit_json(
            {
                "query": args.query,
                "total": page.total,
                "total_exact": page.total_exact,
                "partial": page.partial,
                "took_ms": page.took_ms,
                "results": [
                    {
                        "date": r.item.date.isoformat(),
                        "title": r.item.title,
                        "links": [{"label": lk.label, "url": lk.url} for lk in r.item.links],
                        "score": round(r.score, 6),
                        "snippet": plain(r.snippet),
                    }
                    for r in page.results
                ],
            }
        )
        return 0
    if not page.results:
        print(f"no items match {args.query!r} ({page.took_ms:.1f} ms)")
        return 0
    if page.partial:
        print("no item has every word; these have some of them")
    for n, r in enumerate(page.results, page.offset + 1):
        url = r.item.primary_url or ""
        print(f"{n:>3}. {r.item.date.isoformat()}  {r.item.title}")
        print(f"     {plain(r.snippet)}")
        if url:
            print(f"     {url}")
    last = page.offset + len(page.results)
    total = f"{page.total}" if page.total_exact else f"{page.total}+"
    print(f"{page.offset + 1}–{last} of {total} match(es), {page.took_ms:.1f} ms")
    return 0


def _reindex(core: Core, *, as_json: bool) -> int:
    import time

    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(desc="reindex", unit="item", disable=None if not as_json else True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        count = core.store.reindex(progress=progress)
    seconds = time.perf_counter() - started
    if as_json:
        emit_json({"reindexed": count, "seconds": round(seconds, 2)})
    else:
        print(f"reindexed {count} item(s) in {seconds:.1f} s")
    return 0


def cmd_stats(args: argparse.Namespace, core: Core) -> int:
    since = core.today() - dt.timedelta(days=max(args.days, 1) - 1)
    top = core.store.query_counts(since=since, limit=args.limit)
    missed = core.store.unanswered_queries(since=since, limit=args.limit)
    if args.json:
        emit_json(
            {
                "since": since.isoformat(),
                "top": [{"query": q.query, "asked": q.asked, "no_hits": q.no_hits} for q in top],
                "no_results": [
                    {"query": q.query, "asked": q.asked, "no_hits": q.no_hits} for q in missed
                ],
            }
        )
        return 0
    print(f"Queries since {since.isoformat()} (folded: case and 繁/简 merged)")
    if not top:
        print("  nobody searched yet")
        return 0
    width = max(len(q.query) for q in top)
    print("Most asked:")
    for q in top:
        print(
            f"  {q.query:<{width}}  {q.asked:>5} ×"
            + (f"  ({q.no_hits} found nothing)" if q.no_hits else "")
        )
    print("Found nothing:")
    if not missed:
        print("  every query found something")
    for q in missed:
        print(f"  {q.query:<{width}}  {q.no_hits:>5} ×")
    return 0


async def _send(args: argparse.Namespace, core: Core) -> SendResult:
    from tqdm import tqdm

    from bot.broadcast import Audience
    from bot.service import build_service, require_platforms, start_platforms

    if args.dry_run:  # a plan needs the targets, not the platforms' credentials
        from bot.broadcast import send_brief
        from bot.platforms import specs

        settings = core.settings
        names = (
            [args.platform]
            if args.platform
            else [
                name
                for name, entry in specs().items()
                if entry.has_schedule(settings.platform(name), settings.secret_values(name))
            ]
        )
        return await send_brief(
            core,
            None,
            dict.fromkeys(names),
            resolve_date(core, args.date),
            audience=Audience(args.audience),
            chat_ids=args.target or (),
            force=args.force,
            dry_run=True,
        )
    wanted = [args.platform] if args.platform else None
    service = build_service(core, platforms=wanted, receive=False)
    if args.platform:
        require_platforms(service, [args.platform])
    elif not service.platforms:
        raise ConfigError(
            "no platform is configured: "
            + "; ".join(
                f"{name}: {hint}" for name, hint in _missing(core) if name in platform_names()
            )
        )
    date = resolve_date(core, args.date)
    bar = None
    try:
        if not args.dry_run:
            await start_platforms(service)
            if not args.json:
                bar = tqdm(desc=f"send {date.isoformat()}", unit="chat", disable=None)
        return await service.send(
            date,
            platform=args.platform,
            audience=Audience(args.audience),
            chat_ids=args.target or (),
            force=args.force,
            dry_run=args.dry_run,
            progress=(lambda _outcome: bar.update(1)) if bar is not None else None,
            detailed=args.json,  # the text summary names only what was not delivered
        )
    finally:
        if bar is not None:
            bar.close()
        await service.stop()


def _missing(core: Core) -> list[tuple[str, str]]:
    from bot.platforms import specs

    settings = core.settings
    return [
        (name, entry.missing(settings.platform(name), settings.secret_values(name)))
        for name, entry in specs().items()
    ]


async def _test_send(args: argparse.Namespace, core: Core) -> int:
    from bot.service import build_service, start_platforms

    editors = core.settings.editors
    service = build_service(core, platforms=[editors.platform], receive=False)
    try:
        await start_platforms(service)
        sent = await service.test_send(resolve_date(core, args.date))
    finally:
        await service.stop()
    print(f"test send: {sent} message(s) to the editors' chat {editors.platform}:{editors.chat}")
    return 0


def cmd_send(args: argparse.Namespace, core: Core) -> int:
    from bot.domain import DeliveryStatus
    from bot.logs import scrub

    if args.test and (args.target or args.force or args.dry_run or args.platform):
        raise UsageError(
            "--test goes to [editors] chat only: no --platform, --target, --force or --dry-run"
        )
    if args.test:
        return asyncio.run(_test_send(args, core))
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
    from bot.domain import TargetKind

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


def cmd_site(args: argparse.Namespace, core: Core) -> int:
    from bot.site import build_site, site_out_dir

    out = Path(args.out) if args.out else site_out_dir(core.settings)
    bar = None
    if not args.json:
        from tqdm import tqdm

        # a bar only on a terminal and for a real archive (tqdm disables itself off a TTY)
        bar = tqdm(desc="site", unit="page", disable=None, leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        report = build_site(
            core.store,
            core.settings,
            out,
            today=core.today(),
            base_url=args.base_url,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        emit_json(report.as_json())
        return 0
    print(
        f"wrote {out}: {report.briefs} brief(s), {report.items} item(s), "
        f"{report.files} file(s), {report.bytes / 1024:.0f} KiB"
    )
    return 0


def cmd_run(args: argparse.Namespace, core: Core) -> int:
    from bot.service import build_service, run_until_signalled

    service = build_service(core)
    if not (service.platforms or core.settings.site.listen or core.settings.console.listen):
        raise ConfigError(
            "no platform is configured: "
            + "; ".join(f"{name}: {hint}" for name, hint in _missing(core))
        )
    from bot.site import site_out_dir

    asyncio.run(run_until_signalled(service, site_dir=site_out_dir(core.settings)))
    return 0


def cmd_status(args: argparse.Namespace, core: Core) -> int:
    from bot.platforms import specs
    from bot.reports import status as status_report
    from bot.scheduler import next_runs_from_config

    settings = core.settings
    status = status_report(core.store, core.today(), settings)
    scheduled = [
        name
        for name, entry in specs().items()
        if entry.has_schedule(settings.platform(name), settings.secret_values(name))
    ]
    now = dt.datetime.now(settings.tz)
    status["next_runs"] = {
        job.removeprefix("brief:"): when.isoformat() if when else None
        for job, when in next_runs_from_config(settings, scheduled, now).items()
    }
    if args.json:
        emit_json(status)
        return 0
    print(f"items: {status['items']} (latest day {status['latest_day'] or '-'})")
    for name, p in status["platforms"].items():
        if specs()[name].has_subscribers:
            line = (
                f"{name}: {p['subscribers']} subscriber(s), "
                f"{p['configured_targets']} configured chat(s)"
            )
        else:
            line = f"{name}: {p['configured_targets']} configured robot(s) or endpoint(s)"
        last = p["last_delivery"]
        if last:
            rest = ", ".join(f"{k} {v}" for k, v in last.items() if k != "date")
            line += f"; last delivery {last['date']}: {rest}"
        print(line)
    if not status["next_runs"]:
        hints = "; ".join(f"{name}: {hint}" for name, hint in _missing(core))
        print(f"no schedule: no platform is configured ({hints})")
    for job, when in status["next_runs"].items():
        print(f"next run of {job}: {when}")
    return 0


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="briefbot",
        description="Keep a daily AI news brief (简报), render it per platform, deliver it to "
        f"chats ({', '.join(platform_names())}), and answer keyword queries.",
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
    platforms = platform_names()
    from bot.platforms import specs

    # push-only platforms (group robots, webhooks) have no subscribers
    chats = tuple(name for name, entry in specs().items() if entry.has_subscribers)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    p = sub.add_parser("ingest", help="import Markdown, .txt archives and RSS/Atom feeds")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, or feed URLs (http/https)"
    )
    p.add_argument("--date", type=parse_date, help="put feed entries into this day's pool")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser(
        "approve", help="approve a day's brief as it is now (the schedule sends approved ones)"
    )
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--by", default="cli", help="who approves, for the record (default: cli)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_approve)

    p = sub.add_parser(
        "correct",
        help="after a brief went out: edit its messages in place where the platform can, "
        "else send a correction note, once per target",
    )
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--dry-run", action="store_true", help="show what would be corrected")
    p.add_argument("--by", default="cli", help="who corrects, for the record (default: cli)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_correct)

    p = sub.add_parser("items", help="list a day's stored items")
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_items)

    p = sub.add_parser("preview", help="render a day's brief for a platform")
    p.add_argument("--platform", choices=(*platforms, *DOCUMENT_FORMATS), default=platforms[0])
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_preview)

    p = sub.add_parser("search", help="find stored items by keyword (中文 or English)")
    p.add_argument("query", nargs="?", help="words to find (all must match)")
    p.add_argument(
        "--limit", type=whole_number, default=0, help="how many results (default from config)"
    )
    p.add_argument("--offset", type=whole_number, default=0, help="skip this many results (paging)")
    p.add_argument(
        "--reindex", action="store_true", help="rebuild the search index from the stored items"
    )
    p.add_argument("--json", action="store_true", help="print JSON (with total and took_ms)")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("stats", help="what readers searched for, and what found nothing")
    p.add_argument(
        "--queries", action="store_true", help="the query counts (the only statistics so far)"
    )
    p.add_argument(
        "--days", type=whole_number, default=30, help="over the last N days (default 30)"
    )
    p.add_argument(
        "--limit", type=whole_number, default=20, help="how many rows per list (default 20)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("send", help="deliver a day's brief through the ledger (each chat once)")
    p.add_argument("--date", type=parse_date, help="YYYY-MM-DD (default: latest day with items)")
    p.add_argument("--platform", choices=platforms, help="only this platform")
    p.add_argument(
        "--audience",
        choices=AUDIENCES,
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
    p.add_argument(
        "--test",
        action="store_true",
        help="send it to the editors' chat only ([editors]), outside the ledger, to check it",
    )
    p.add_argument("--force", action="store_true", help="send again to chats that already have it")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_send)

    p = sub.add_parser("subscribers", help="list, add or remove subscribers")
    subs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sp = subs.add_parser("list", help="list subscribers")
    sp.add_argument("--platform", choices=chats)
    sp.add_argument("--all", action="store_true", help="include inactive ones")
    sp.add_argument("--json", action="store_true", help="print JSON")
    for action, text in (("add", "subscribe a chat"), ("remove", "unsubscribe a chat")):
        sp = subs.add_parser(action, help=text)
        sp.add_argument("chat_id", metavar="CHAT_ID")
        sp.add_argument("--platform", choices=chats, default=chats[0])
        if action == "add":
            sp.add_argument("--kind", choices=TARGET_KINDS, default="subscriber")
            sp.add_argument("--name", help="a label for people")
    p.set_defaults(handler=cmd_subscribers)

    p = sub.add_parser("site", help="the public archive: a static site of published briefs")
    site = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sp = site.add_parser(
        "build", help="write the site and its feeds (RSS, Atom, JSON Feed) to a folder"
    )
    sp.add_argument(
        "out",
        nargs="?",
        metavar="OUT",
        help="the folder (default: [site] out_dir in the data folder)",
    )
    sp.add_argument("--base-url", help="the public address of the site (default: [site] base_url)")
    sp.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_site)

    from bot.console.cli import add_parser as add_console_parser

    add_console_parser(sub)

    p = sub.add_parser("run", help="run the bots and the schedule until SIGINT/SIGTERM")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("status", help="subscribers, groups and the last delivery per platform")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "demo",
        help="run the whole service against the loopback platform servers (no accounts)",
    )
    p.set_defaults(handler=None)  # handled in main(): it needs no configured store
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.config import load_settings
    from bot.core import build_core
    from bot.logs import scrub, setup_logging

    try:
        settings = load_settings(args.config)
        # `run` logs its events; the demo's transcript is its output, so only errors show
        default_level = {"run": "INFO", "console": "INFO", "demo": "ERROR"}.get(
            args.verb, "WARNING"
        )
        setup_logging(
            default_level if args.log_level is None else args.log_level,
            secrets=settings.all_secrets(),
        )
        if args.verb == "demo":  # its own throwaway store: the configured one is not touched
            from bot.sandbox.demo import run_demo

            return asyncio.run(run_demo())
        core = build_core(settings, database_url=args.db)
    except BriefbotError as exc:
        print(f"briefbot: {scrub(str(exc))}", file=sys.stderr)
        return 2
    try:
        handler: Handler = args.handler
        return handler(args, core)
    except BrokenPipeError:
        # `briefbot items --json | head`: the reader left; say nothing more (Python's recipe:
        # point stdout at /dev/null so the interpreter's final flush does not fail again)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
