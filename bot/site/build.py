"""Build the public archive: the published briefs as a static site with feeds, swapped in whole."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from bot.brief import assemble_brief
from bot.config import Settings, SiteSettings, parse_listen
from bot.domain import DeliveryStatus
from bot.errors import ConfigError, RenderError
from bot.render.environment import template_folders
from bot.site import feeds
from bot.site.search_index import search_index_script
from bot.site.swap import staged_folder
from bot.site.views import (
    LANG_TAGS,
    UI_WORDS,
    BriefView,
    brief_view,
    clean,
    months_of,
)
from bot.store import Store

# When a brief that never went out through the ledger (an imported back issue) was published,
# as far as the feeds say: that day at this time, in the brief's time zone.
FALLBACK_PUBLISH_TIME = dt.time(8, 0)
# Files copied as they are from the template folders (an override folder may replace them).
STATIC_FILES = ("site.css", "search.js")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SiteReport:
    """What a build wrote."""

    briefs: int
    items: int
    files: int
    bytes: int
    out_dir: Path
    base_url: str
    latest: dt.date | None

    def as_json(self) -> dict[str, Any]:
        return {
            "briefs": self.briefs,
            "items": self.items,
            "files": self.files,
            "bytes": self.bytes,
            "out_dir": str(self.out_dir),
            "base_url": self.base_url,
            "latest": self.latest.isoformat() if self.latest else None,
        }


def public_dates(store: Store, today: dt.date, *, published_only: bool = False) -> list[dt.date]:
    """The days the public archive shows, newest first.

    The one rule of what is public: a day before ``today``; ``today`` once its brief has been
    delivered to at least one chat (the ledger has a ``sent`` row); a later day never. With
    ``published_only`` (``[schedule] require_approval``) a day is public once its brief went
    out, and a draft never is, however old.
    """
    if published_only:
        return store.published_dates(on_or_before=today)

    def public(day: dt.date) -> bool:
        if day != today:
            return day < today
        return store.delivery_counts(day).get(DeliveryStatus.SENT.value, 0) > 0

    return [day for day in store.dates() if public(day)]


def resolve_base_url(site: SiteSettings, base_url: str | None = None) -> str:
    """The site's absolute address, ending in ``/``: ``base_url``, else ``[site] base_url``,
    else ``http://<[site] listen>/``. Feeds need absolute links, so one of them must be set."""
    chosen = base_url or site.base_url
    if not chosen:
        if not site.listen:
            raise ConfigError(
                "the archive's feeds need absolute links: set [site] base_url "
                '(e.g. base_url = "https://brief.example.com/") or [site] listen'
            )
        host, _ = parse_listen(site.listen)
        if host in ("0.0.0.0", "::"):
            raise ConfigError(
                f"[site] listen = {site.listen!r} listens on every interface, which is no "
                "address a reader can open: set [site] base_url to the site's public address"
            )
        chosen = f"http://{site.listen}/"
    try:
        parts = urlsplit(chosen)
    except ValueError as exc:
        raise ConfigError(f"[site] base_url {chosen!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"[site] base_url {chosen!r} must be an absolute http(s) address such as "
            "https://brief.example.com/ (no query or fragment)"
        )
    return chosen if chosen.endswith("/") else chosen + "/"


def site_out_dir(settings: Settings) -> Path:
    """``[site] out_dir``; a relative path is inside ``[store] data_dir``."""
    out = Path(settings.site.out_dir).expanduser()
    return out if out.is_absolute() else Path(settings.store.data_dir).expanduser() / out


def published_at(store: Store, day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The time feeds give a brief: its first send, else ``FALLBACK_PUBLISH_TIME`` that day."""
    sent = store.sent_at(day)
    if sent is not None:
        return sent.astimezone(tz)
    return dt.datetime.combine(day, FALLBACK_PUBLISH_TIME, tzinfo=tz)


def site_environment(template_dir: str = "") -> SandboxedEnvironment:
    """The site's templates (``templates/site``; ``[render] template_dir``/site overrides),
    autoescaped HTML in a sandbox: content is data, never template syntax."""
    override = Path(template_dir).expanduser() if template_dir else None
    loader = ChoiceLoader(
        [FileSystemLoader(folder) for folder in template_folders("site", override)]
    )
    return SandboxedEnvironment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


class _Output:
    """Writes the site's files into the staged folder and counts them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0
        self.bytes = 0

    def write(self, relative: str, data: str | bytes) -> None:
        body = data.encode("utf-8") if isinstance(data, str) else data
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self.files += 1
        self.bytes += len(body)


class _Pages:
    """Renders the site's templates with the context every page shares."""

    def __init__(self, environment: SandboxedEnvironment, shared: Mapping[str, Any]) -> None:
        self.environment = environment
        self.shared = shared

    def render(self, name: str, **context: Any) -> str:
        try:
            return self.environment.get_template(name).render(**self.shared, **context)
        except TemplateSyntaxError as exc:
            where = f"{exc.filename or exc.name}:{exc.lineno}"
            raise RenderError(f"site template {name}: {where}: {exc.message}") from exc
        except TemplateError as exc:
            raise RenderError(f"site template {name}: {exc}") from exc

    def static(self, name: str) -> str:
        loader = self.environment.loader
        assert loader is not None
        try:
            return loader.get_source(self.environment, name)[0]
        except TemplateError as exc:
            raise RenderError(f"site file {name} not found in the template folders") from exc


def build_site(
    store: Store,
    settings: Settings,
    out_dir: Path,
    *,
    today: dt.date,
    base_url: str | None = None,
    progress: Progress | None = None,
) -> SiteReport:
    """Write the archive of every public brief (see :func:`public_dates`) to ``out_dir``.

    The site is built in a folder beside ``out_dir`` and swapped in whole when complete (see
    :mod:`bot.site.swap`): a server reading ``out_dir`` sees the old site or the new one. A
    failed build leaves the old site as it was. Blocking: async code runs it in a thread.
    """
    site = settings.site
    if site.language not in UI_WORDS:
        raise ConfigError(
            f"[site] language must be one of {', '.join(UI_WORDS)}, got {site.language!r}"
        )
    base = resolve_base_url(site, base_url)
    tz = settings.tz
    language = site.language
    days = public_dates(store, today, published_only=settings.schedule.require_approval)
    views: list[BriefView] = []
    for day in days:
        brief = assemble_brief(store, day, settings.brief)
        if brief is not None:
            views.append(brief_view(brief, language))
    site_view = {
        "title": clean(site.title),
        "description": clean(site.description),
        "language": language,
        "lang": LANG_TAGS[language],
        "base_url": base,
    }
    pages = _Pages(
        site_environment(settings.render.template_dir),
        {"site": site_view, "t": UI_WORDS[language]},
    )
    feed_site = feeds.FeedSite(
        base_url=base,
        title=site_view["title"],
        description=site_view["description"],
        language=LANG_TAGS[language],
    )
    feed_entries = [
        feeds.FeedEntry(
            view=view,
            published=published_at(store, view.date, tz),
            content_html=pages.render("feed_content.html", brief=view, base=base),
        )
        for view in views[: site.feed_briefs]
    ]
    fallback = dt.datetime.combine(today, dt.time(0), tzinfo=tz)
    total = len(views)
    with staged_folder(out_dir) as stage:
        out = _Output(stage)
        if progress is not None:
            progress(0, total)
        for name in STATIC_FILES:
            out.write(name, pages.static(name))
        out.write(
            "index.html",
            pages.render("index.html", root="", canonical=base, months=months_of(views, language)),
        )
        for number, view in enumerate(views):
            # views are newest first: the one after is the older brief
            older = views[number + 1] if number + 1 < total else None
            newer = views[number - 1] if number > 0 else None
            out.write(
                view.path,
                pages.render(
                    "brief.html",
                    root="../",
                    canonical=base + view.path,
                    brief=view,
                    older=older,
                    newer=newer,
                ),
            )
            for entry in view.entries:
                out.write(
                    entry.path,
                    pages.render(
                        "item.html",
                        root="../",
                        canonical=base + entry.path,
                        brief=view,
                        entry=entry,
                    ),
                )
            if progress is not None:
                progress(number + 1, total)
        out.write("search.html", pages.render("search.html", root="", canonical=None))
        out.write("search-index.js", search_index_script(views))
        # served for any missing path, at any depth: its links start at the site's own path
        out.write("404.html", pages.render("404.html", root=urlsplit(base).path, canonical=None))
        out.write("feed.xml", feeds.rss(feed_site, feed_entries, fallback))
        out.write("atom.xml", feeds.atom(feed_site, feed_entries, fallback))
        out.write("feed.json", feeds.json_feed(feed_site, feed_entries))
    return SiteReport(
        briefs=total,
        items=sum(len(view.entries) for view in views),
        files=out.files,
        bytes=out.bytes,
        out_dir=out_dir,
        base_url=base,
        latest=views[0].date if views else None,
    )
