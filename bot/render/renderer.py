"""Render briefs, search results and replies per platform into messages within its limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, TemplateError, TemplateNotFound, TemplateSyntaxError

from bot.domain import Brief, Item, OutgoingMessage
from bot.errors import RenderError
from bot.platforms.base import Limits, Markup
from bot.render.environment import known_formats, make_environment, template_folders
from bot.render.length import measure
from bot.render.split import remove_block_breaks, split_rendered
from bot.reports import brief_json
from bot.search import SearchResult
from bot.search.snippet import Segments, snippet


def default_limits(platform: str) -> Limits | None:
    """A platform's declared limits (None for a document format such as markdown)."""
    from bot.platforms import specs

    entry = specs().get(platform)
    return entry.default_limits if entry is not None else None


_PARSE_MODES = {Markup.HTML: "html", Markup.MARKDOWN: "markdown", Markup.JSON: "json"}

# An HTML link's escaped URL may take at most this share of a message (and 2048 units):
# a longer one is written out as text, which can be split, instead of an unsplittable tag.
_MAX_HREF_SHARE = 4
_MAX_HREF_UNITS = 2048


@dataclass(frozen=True, slots=True)
class Entry:
    """An item as a template shows it: its number and the section heading that starts here."""

    number: int
    item: Item
    # the item's section when it differs from the previous item's, else None
    section: str | None


@dataclass(frozen=True, slots=True)
class ResultEntry:
    """A search result as a template shows it: its number, and its title and snippet as
    (text, is a hit) segments to mark up."""

    number: int
    item: Item
    title: Segments
    snippet: Segments


def entries_of(items: Sequence[Item]) -> list[Entry]:
    """Number ``items`` from 1 and mark where a new section starts."""
    entries: list[Entry] = []
    previous: str | None = None
    for number, item in enumerate(items, start=1):
        starts = item.section if item.section and item.section != previous else None
        entries.append(Entry(number=number, item=item, section=starts))
        previous = item.section
    return entries


class Renderer:
    """Renders through per-platform templates, then splits by the platform's :class:`Limits`.

    Templates are looked up in ``template_dir/<platform>/`` first (a user's override folder,
    ``[render] template_dir``), then in the built-in folder (:func:`default_template_dir`).
    """

    max_search_results = 10

    def __init__(self, template_dir: Path | None = None) -> None:
        if template_dir is not None and not template_dir.is_dir():
            raise RenderError(
                f"template folder {template_dir} does not exist (setting [render] template_dir)"
            )
        self.template_dir = template_dir
        self._environments: dict[str, Environment] = {}

    def brief(
        self, brief: Brief, platform: str, limits: Limits | None = None
    ) -> list[OutgoingMessage]:
        """Render a day's brief (``brief.j2``) as the messages to send, in order."""
        return self._messages(
            platform, "brief.j2", limits, self._brief_context(brief, platform, limits)
        )

    def brief_document(self, brief: Brief, platform: str, limits: Limits | None = None) -> str:
        """Render a day's brief as one unsplit text (what :meth:`brief` splits)."""
        context = self._brief_context(brief, platform, limits)
        return remove_block_breaks(self._render(platform, "brief.j2", context))

    def search_results(
        self,
        query: str,
        items: Sequence[Item],
        platform: str,
        limits: Limits | None = None,
        *,
        total: int | None = None,
        results: Sequence[SearchResult] | None = None,
        lang: str = "zh",
        offset: int = 0,
        partial: bool = False,
        more: str = "",
        total_exact: bool = True,
    ) -> list[OutgoingMessage]:
        """Render the reply to a keyword query (``search.j2``): the best few items, or none.

        ``items`` come best first (or ``results``, which also carry the hits to mark); at most
        :attr:`max_search_results` are shown, numbered from ``offset + 1``. ``total`` is the
        number of matches when more exist than were passed; ``partial`` says no item had
        every word; ``more`` is how to see the next ones ("" when there are none);
        ``total_exact`` False says at least ``total`` match. One language per reply: ``lang``.
        """
        if results is None:
            results = [
                SearchResult(item, 0, 0.0, ((item.title, False),), snippet(item.summary, ()))
                for item in items
            ]
        shown = list(results[: self.max_search_results])
        counted = max(total if total is not None else len(shown), offset + len(shown))
        entries = entries_of([r.item for r in shown])
        context: dict[str, object] = {
            "query": query,
            "items": [r.item for r in shown],
            "entries": entries,
            "results": [
                ResultEntry(entry.number + offset, r.item, r.title, r.snippet)
                for entry, r in zip(entries, shown, strict=True)
            ],
            "total": counted,
            # "2000+" when counting stopped (see bot.store.search_index.COUNT_LIMIT)
            "total_text": f"{counted}" if total_exact else f"{counted}+",
            "shown": len(shown),
            "first": offset + 1,
            "last": offset + len(shown),
            "partial": partial,
            "more": more,
            "lang": lang,
            "max_href": self._max_href(platform, limits),
        }
        return self._messages(platform, "search.j2", limits, context)

    def card(
        self, result: SearchResult, platform: str, limits: Limits | None = None, *, lang: str
    ) -> OutgoingMessage:
        """One item as a message of its own (``item.j2``): an inline-mode card, a detail."""
        context: dict[str, object] = {
            "item": result.item,
            "result": ResultEntry(1, result.item, result.title, result.snippet),
            "lang": lang,
            "max_href": self._max_href(platform, limits),
        }
        return self._messages(platform, "item.j2", limits, context)[0]

    def text(
        self, platform: str, template: str, limits: Limits | None = None, **context: object
    ) -> list[OutgoingMessage]:
        """Render any other reply (``help.j2``, ``stats.j2``…) by template name."""
        context.setdefault("max_href", self._max_href(platform, limits))
        return self._messages(platform, template, limits, context)

    # -- internals ---------------------------------------------------------------------------

    def _brief_context(
        self, brief: Brief, platform: str, limits: Limits | None
    ) -> dict[str, object]:
        return {
            "brief": brief,
            "entries": entries_of(brief.items),
            "max_href": self._max_href(platform, limits),
            # the brief as the JSON the outbound webhook posts (bot.reports.brief_json)
            "document": brief_json(brief),
        }

    @staticmethod
    def _limits(platform: str, limits: Limits | None) -> Limits | None:
        return limits if limits is not None else default_limits(platform)

    def _max_href(self, platform: str, limits: Limits | None) -> int:
        resolved = self._limits(platform, limits)
        if resolved is None:
            return _MAX_HREF_UNITS
        return min(_MAX_HREF_UNITS, resolved.max_length // _MAX_HREF_SHARE)

    def _environment(self, platform: str) -> Environment:
        environment = self._environments.get(platform)
        if environment is None:
            declared = default_limits(platform)
            html = declared is not None and declared.markup is Markup.HTML
            environment = make_environment(platform, self.template_dir, autoescape=html)
            self._environments[platform] = environment
        return environment

    def _render(self, platform: str, template: str, context: Mapping[str, object]) -> str:
        environment = self._environment(platform)
        try:
            return environment.get_template(template).render(context)
        except TemplateNotFound as exc:
            folders = ", ".join(str(f) for f in template_folders(platform, self.template_dir))
            raise RenderError(
                f"template {exc.name!r} for {platform} not found (searched {folders})"
            ) from exc
        except TemplateSyntaxError as exc:
            where = exc.filename or f"{platform}/{template}"
            raise RenderError(
                f"{where}:{exc.lineno}: template syntax error: {exc.message}"
            ) from exc
        except TemplateError as exc:
            raise RenderError(f"{self._where(platform, template)}: {exc}") from exc
        except Exception as exc:  # a user's template may fail in any way: say which one
            raise RenderError(
                f"{self._where(platform, template)}: {type(exc).__name__}: {exc}"
            ) from exc

    def _where(self, platform: str, template: str) -> str:
        try:
            source = self._environment(platform).get_template(template).filename
        except TemplateError:
            source = None
        return source or f"{platform}/{template}"

    def _messages(
        self,
        platform: str,
        template: str,
        limits: Limits | None,
        context: Mapping[str, object],
    ) -> list[OutgoingMessage]:
        if platform not in known_formats():
            raise RenderError(
                f"unknown platform {platform!r}: expected one of {', '.join(known_formats())}"
            )
        rendered = self._render(platform, template, context)
        resolved = self._limits(platform, limits)
        html_mode = resolved is not None and resolved.markup is Markup.HTML
        parse_mode = None if resolved is None else _PARSE_MODES.get(resolved.markup)
        if resolved is None:
            document = remove_block_breaks(rendered)
            return [OutgoingMessage(document, parse_mode)] if document else []
        if resolved.markup is Markup.JSON:  # one document: splitting would break it
            document = remove_block_breaks(rendered)
            size = measure(document, resolved.length_unit)
            if size > resolved.max_length:
                raise RenderError(
                    f"{self._where(platform, template)}: the JSON document is {size} "
                    f"{resolved.length_unit} long, over the limit of {resolved.max_length}"
                )
            return [OutgoingMessage(document, parse_mode)] if document else []
        try:
            pieces = split_rendered(
                rendered,
                resolved,
                html_mode=html_mode,
                allowed_tags=resolved.allowed_tags if html_mode else None,
            )
        except RenderError as exc:
            raise RenderError(f"{self._where(platform, template)}: {exc}") from exc
        return [OutgoingMessage(piece, parse_mode) for piece in pieces]
