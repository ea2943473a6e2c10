"""Broadcast a day's brief: who gets it, rendered per platform (and per reader's topics),
handed to the delivery engine.

The CLI, the admins' chat commands and the scheduler all send through :func:`send_brief`.
(Not a "dispatcher": in bot frameworks that word routes incoming updates; this is the
outgoing fan-out.)

Readers choose (``/subscribe 芯片``, ``/time``, ``/pause``): a reader with topics gets a short
personal brief of the matching items only, so a fan-out is a few *groups*, each one
rendering and the targets that get it: the channels and the readers who take every item,
then one group per distinct topic list. Each group goes through the engine on its own; the
ledger stays one row per (brief, target), and its content hash is that group's rendering.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from bot.brief import assemble_brief, brief_title
from bot.core import Core
from bot.delivery import DeliveryEngine, DeliveryReport, Outcome, ProgressCallback
from bot.delivery.claims import claim_is_stale, default_worker_id, run_id
from bot.delivery.engine import parts_digest, unclaimed_outcome
from bot.domain import (
    Brief,
    Button,
    ClaimResult,
    DeliveryStatus,
    Item,
    OutgoingMessage,
    Target,
    TargetKind,
)
from bot.errors import AuthRejected, BriefbotError, BriefChanged, NothingToSend, UsageError
from bot.platforms import spec
from bot.platforms.base import Platform
from bot.render.environment import hashtag
from bot.search.fold import fold
from bot.search.tokens import AliasLookup, Group, ParsedQuery, parse_query
from bot.store.subscribers import SubscriberFilter

log = logging.getLogger("briefbot.broadcast")

# Subscribers read from the store at a time while a fan-out streams them.
SUBSCRIBER_PAGE = 500
# A reader follows at most this many topics, each at most this long (a topic is a keyword).
MAX_TOPICS = 10
MAX_TOPIC_LENGTH = 32
# Renderings (groups of readers) delivered at once; the outbox paces them all together.
GROUPS_AT_ONCE = 4
# The presentations a platform's settings may ask for (``style``): the whole brief, or one
# message of headlines with a button for the whole text.
FULL, DIGEST = "full", "digest"
# The digest's button (both languages: one rendering goes to readers of both).
FULL_TEXT_BUTTON = "📖 全文 / Full text"
NO_MATCH = "no item of the day matches the reader's topics"


class Audience(StrEnum):
    ALL = "all"
    CHANNELS = "channels"  # configured channels and groups
    SUBSCRIBERS = "subscribers"


@dataclass
class PlannedDelivery:
    target: Target
    status: DeliveryStatus
    parts: int


@dataclass
class SendResult:
    date: dt.date
    title: str
    report: DeliveryReport | None = None  # None for a dry run
    plan: list[PlannedDelivery] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    # the brief as it was rendered for this send (what its readers got)
    brief: Brief | None = None

    def summary(self) -> dict[str, int]:
        if self.report is None:
            counts: dict[str, int] = {}
            for p in self.plan:
                counts[p.status.value] = counts.get(p.status.value, 0) + 1
            return counts
        counts = self.report.summary()
        counts["unresolved"] = len(self.unresolved)
        return counts


# -- topics --------------------------------------------------------------------------------


def canonical_topics(words: Iterable[str]) -> tuple[str, ...]:
    """A reader's topics as stored: tidied, cut to :data:`MAX_TOPIC_LENGTH`, one per folded
    form (芯片 and 芯片, GPU and gpu are one), in folded order, so readers with the same
    topics store the same text and a fan-out renders their brief once."""
    kept: dict[str, str] = {}
    for word in words:
        topic = " ".join(word.split())[:MAX_TOPIC_LENGTH]
        key = fold(topic)
        if topic and key not in kept:
            kept[key] = topic
    return tuple(kept[key] for key in sorted(kept))


class TopicMatcher:
    """Whether an item is about one of a reader's topics, the way search decides it.

    An item matches a topic when a search for that topic finds it: the topic is parsed as a
    query (:func:`bot.search.tokens.parse_query`, folded, with the aliases: 芯片 also finds
    chip and 晶片, 開源 finds 开源), and every group of it must have an alternative whose
    atoms all occur, as consecutive tokens, in one of the item's index columns (title, tags
    and section, summary and link labels; :func:`bot.store.search_index.index_columns`):
    what the FTS5 phrase query or PostgreSQL's ``phraseto_tsquery`` checks in the index.
    Done here over a day's few items rather than by asking the index, which ranks only the
    newest matches of all days.
    """

    def __init__(
        self, topics: Sequence[str], *, aliases: AliasLookup | None, max_length: int = 64
    ) -> None:
        self.topics = tuple(topics)
        parsed = (parse_query(t, max_length=max_length, aliases=aliases) for t in topics)
        self.queries: tuple[ParsedQuery, ...] = tuple(q for q in parsed if q.groups)

    def __call__(self, item: Item) -> bool:
        columns = _columns(item)
        return any(
            all(_group_found(group, columns) for group in query.groups) for query in self.queries
        )

    def items(self, items: Iterable[Item]) -> tuple[Item, ...]:
        return tuple(item for item in items if self(item))


@functools.lru_cache(maxsize=4096)
def _columns(item: Item) -> tuple[str, ...]:
    """An item's index columns, space-padded; cached: a fan-out with many topic groups
    matches the same few items of the day again and again."""
    from bot.store.search_index import index_columns

    return tuple(f" {tokens} " for tokens in index_columns(item).values())


def _group_found(group: Group, columns: Sequence[str]) -> bool:
    return any(
        all(any(f" {' '.join(atom.tokens)} " in column for column in columns) for atom in alt)
        for alt in group
    )


def topic_matcher(core: Core, topics: Sequence[str]) -> TopicMatcher:
    config = core.settings.search
    return TopicMatcher(topics, aliases=core.aliases, max_length=config.max_query_length)


def personal_brief(core: Core, brief: Brief, topics: Sequence[str]) -> Brief | None:
    """The short brief of a reader with topics: the matching items only, under a title of
    its own (the title pattern over those items, then the topics as hashtags); None when
    nothing of the day matches."""
    items = topic_matcher(core, topics).items(brief.items)
    if not items:
        return None
    tags = " ".join(hashtag(topic) for topic in topics)
    title = f"{brief_title(brief.date, items, core.settings.brief)} · {tags}"
    return replace(brief, title=title, items=items)


# -- rendering ---------------------------------------------------------------------------


def presentation(core: Core, platform: str) -> str:
    """The platform's ``style`` setting (``full`` where it has none)."""
    style = getattr(core.settings.platform(platform), "style", FULL)
    return style if style in (FULL, DIGEST) else FULL


def render_brief(
    core: Core, brief: Brief, platform: str, *, style: str | None = None
) -> list[OutgoingMessage]:
    """A brief as ``platform`` sends it: whole (``full``) or as a digest of headlines with a
    button for the whole text. Parts after the first are silent (a brief of N parts rings
    once); the first may be pinned where a chat is set to pin briefs."""
    limits = core.limits(platform)
    if (style or presentation(core, platform)) == DIGEST:
        from bot.render.renderer import entries_of

        parts = core.renderer.text(
            platform, "digest.j2", limits, brief=brief, entries=entries_of(brief.items)
        )
        if parts and core.rules(platform).buttons:
            button = Button(FULL_TEXT_BUTTON, f"full:{brief.date.isoformat()}")
            parts[-1] = replace(parts[-1], buttons=(button,))
    else:
        parts = core.renderer.brief(brief, platform, limits)
    return mark_parts(parts)


def mark_parts(parts: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    """The first part rings and may be pinned; the others arrive silently."""
    return [replace(part, silent=i > 0, pin=i == 0) for i, part in enumerate(parts)]


def render_for(
    core: Core, brief: Brief, platforms: Sequence[str]
) -> dict[str, list[OutgoingMessage]]:
    return {name: render_brief(core, brief, name) for name in platforms}


def render_for_target(core: Core, brief: Brief, target: Target) -> list[OutgoingMessage]:
    """What ``target`` gets of ``brief`` in a fan-out: the platform's presentation of the
    whole brief or, for a reader with topics, of their items ([] when none match). For
    whoever must redo one target's messages (a correction editing them in place)."""
    subscriber = core.store.subscriber(target.platform, target.chat_id)
    if subscriber is not None and subscriber.topics:
        mine = personal_brief(core, brief, canonical_topics(subscriber.topics))
        return [] if mine is None else render_brief(core, mine, target.platform)
    return render_brief(core, brief, target.platform)


# -- who gets what -------------------------------------------------------------------------

Pages = Callable[[], AsyncIterator[list[Target]]]


@dataclass
class Fanout:
    """One rendering of the day's brief and the targets that get it. No parts: nothing
    matches these readers' topics; their rows are recorded as skipped with ``reason``.

    A topic group is rendered when its turn comes (:meth:`render`), not when the send is
    planned: thousands of distinct topic lists are never all in memory at once."""

    platform: str
    render: Callable[[], list[OutgoingMessage]]
    pages: Pages
    topics: tuple[str, ...] = ()
    reason: str = ""


async def configured_targets(
    core: Core,
    platforms: Mapping[str, Platform | None],
    audience: Audience,
    *,
    only: Sequence[str] = (),
    unresolved: list[str],
    readers: SubscriberFilter | None = None,
) -> AsyncIterator[list[Target]]:
    """Pages of targets: the configured channels and groups of each platform first, then its
    subscribers (those ``readers`` selects), read from the store a page at a time. A
    configured group that cannot be found is described in ``unresolved``. ``platforms``
    maps names to connected adapters (None: not connected, e.g. a dry run; configured chats
    are then taken as written).

    ``only`` keeps the configured channels and groups whose name or id it lists (a schedule
    of their own) and no subscribers; with the subscribers audience it names subscribers
    (the readers due this minute).
    """
    for name, adapter in platforms.items():
        settings = core.settings.platform(name)
        if audience in (Audience.ALL, Audience.CHANNELS):
            page: list[Target] = []
            for configured in spec(name).configured_targets(settings):
                if only and configured.name not in only and configured.chat_id not in only:
                    continue
                if adapter is not None:
                    chat_id = await adapter.resolve(configured)
                else:  # a dry run: a group known only by its name is shown by that name
                    chat_id = configured.chat_id or configured.name
                if chat_id is None:
                    unresolved.append(spec(name).unresolved(settings, configured))
                    continue
                page.append(Target(name, chat_id, configured.kind, configured.name))
            if page:
                yield page
        if _reaches_subscribers(name, audience, only):
            where = readers or _readers(core, None, audience, only, force=True)
            async for subscribers in _subscriber_pages(core, name, where):
                yield subscribers


def _reaches_subscribers(platform: str, audience: Audience, only: Sequence[str]) -> bool:
    if not spec(platform).has_subscribers:
        return False
    if audience is Audience.SUBSCRIBERS:
        return True
    return audience is Audience.ALL and not only


def _readers(
    core: Core, date: dt.date | None, audience: Audience, only: Sequence[str], *, force: bool
) -> SubscriberFilter:
    """Which subscribers a send reaches: never a paused one; for today's brief without
    --force, only those without a time of their own (they get it at their time, from the
    schedule's minute job, which names them in ``only``)."""
    named = bool(only) and audience is Audience.SUBSCRIBERS
    timed_apart = date is not None and date == core.today() and not force and not named
    return SubscriberFilter(
        awake_at=dt.datetime.now(dt.UTC),
        timed=False if timed_apart else None,
        chat_ids=tuple(only) if named else None,
    )


async def _subscriber_pages(
    core: Core, platform: str, where: SubscriberFilter
) -> AsyncIterator[list[Target]]:
    pages = core.store.subscriber_pages(platform, page=SUBSCRIBER_PAGE, where=where)
    while (subscribers := await asyncio.to_thread(next, pages, None)) is not None:
        yield [s.target for s in subscribers]


def explicit_targets(
    core: Core, platform: str, chat_ids: Sequence[str], date: dt.date | None = None
) -> list[Target]:
    """Targets named by id (the CLI's --target, resuming a send); their kind comes from the
    settings, the ledger and the store (it decides their pacing)."""
    known = {s.chat_id: s.kind for s in core.store.subscribers(platform, active_only=False)}
    if date is not None:
        known.update({d.chat_id: d.kind for d in core.store.deliveries(date, platform)})
    for configured in spec(platform).configured_targets(core.settings.platform(platform)):
        if configured.chat_id:
            known[configured.chat_id] = configured.kind
    return [Target(platform, c, known.get(c, TargetKind.SUBSCRIBER)) for c in chat_ids]


def _audience_fanouts(
    core: Core,
    platforms: Mapping[str, Platform | None],
    brief: Brief,
    everyone: Mapping[str, list[OutgoingMessage]],
    audience: Audience,
    *,
    only: Sequence[str],
    force: bool,
    unresolved: list[str],
) -> list[Fanout]:
    fanouts: list[Fanout] = []
    for name, adapter in platforms.items():
        readers = _readers(core, brief.date, audience, only, force=force)
        main_readers = replace(readers, no_topics=True)

        def main_pages(
            name: str = name,
            adapter: Platform | None = adapter,
            where: SubscriberFilter = main_readers,
        ) -> AsyncIterator[list[Target]]:
            return configured_targets(
                core,
                {name: adapter},
                audience,
                only=only,
                unresolved=unresolved,
                readers=where,
            )

        fanouts.append(Fanout(name, _constant(everyone[name]), main_pages))
        if _reaches_subscribers(name, audience, only):
            fanouts.extend(_topic_fanouts(core, name, brief, readers))
    return fanouts


def _topic_fanouts(
    core: Core, platform: str, brief: Brief, readers: SubscriberFilter
) -> list[Fanout]:
    """One fan-out per distinct topic list among ``readers`` (lists that fold alike are one)."""
    by_meaning: dict[tuple[str, ...], tuple[tuple[str, ...], list[str]]] = {}
    for key, topics in core.store.topic_sets(platform, readers):
        canonical = canonical_topics(topics)
        meaning = tuple(fold(t) for t in canonical)
        if not meaning:
            continue
        by_meaning.setdefault(meaning, (canonical, []))[1].append(key)
    fanouts: list[Fanout] = []
    for topics, keys in by_meaning.values():
        where = replace(readers, topic_keys=tuple(keys))

        def pages(where: SubscriberFilter = where) -> AsyncIterator[list[Target]]:
            return _subscriber_pages(core, platform, where)

        fanouts.append(_topic_fanout(core, platform, brief, topics, pages))
    return fanouts


def _topic_fanout(
    core: Core, platform: str, brief: Brief, topics: tuple[str, ...], pages: Pages
) -> Fanout:
    def render() -> list[OutgoingMessage]:
        mine = personal_brief(core, brief, topics)
        return [] if mine is None else render_brief(core, mine, platform)

    return Fanout(platform, render, pages, topics, NO_MATCH)


def _explicit_fanouts(
    core: Core,
    platform: str,
    brief: Brief,
    everyone: list[OutgoingMessage],
    targets: Sequence[Target],
) -> list[Fanout]:
    """Named chats (--target, resuming a send): each gets what its own topics say, so a
    resumed delivery continues the rendering it started."""
    topics_of = {
        s.chat_id: canonical_topics(s.topics)
        for s in core.store.subscribers(platform, active_only=False)
        if s.topics
    }
    grouped: dict[tuple[str, ...], list[Target]] = {}
    for target in targets:
        grouped.setdefault(topics_of.get(target.chat_id, ()), []).append(target)
    fanouts: list[Fanout] = []
    for topics, chosen in grouped.items():

        def pages(chosen: list[Target] = chosen) -> AsyncIterator[list[Target]]:
            return _as_pages(chosen)

        if not topics:
            fanouts.append(Fanout(platform, _constant(everyone), pages))
        else:
            fanouts.append(_topic_fanout(core, platform, brief, topics, pages))
    return fanouts


def _constant(parts: list[OutgoingMessage]) -> Callable[[], list[OutgoingMessage]]:
    return lambda: parts


# -- sending -------------------------------------------------------------------------------


async def send_brief(
    core: Core,
    engine: DeliveryEngine | None,
    platforms: Mapping[str, Platform | None],
    date: dt.date,
    *,
    audience: Audience = Audience.ALL,
    chat_ids: Sequence[str] = (),
    only: Sequence[str] = (),
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    detailed: bool = True,
    expected: str | None = None,
) -> SendResult:
    """Send the brief of ``date`` through the ledger to ``platforms``: each target once
    unless ``force``. ``chat_ids`` names chats directly (the CLI's --target). Without
    ``detailed`` the report lists only the targets not sent or skipped. ``expected`` is the
    content hash an editor approved (the schedule's sends): a brief that differs now is not
    sent (:class:`BriefChanged`), however late the change came.

    Paused readers are left out; so are readers with a time of their own when the brief is
    today's and the send is not forced (their minute comes from the schedule, which names
    them in ``only`` with the subscribers audience)."""
    brief = assemble_brief(core.store, date, core.settings.brief)
    if brief is None:
        raise NothingToSend(f"no items on {date.isoformat()}: nothing to send")
    if expected is not None:
        from bot.editorial import content_hash

        if content_hash(brief) != expected:
            raise BriefChanged(
                f"the brief of {date.isoformat()} changed after it was approved or published: "
                "not sent (approve it again, or run `briefbot correct` once it is out)"
            )
    if not platforms:
        raise BriefbotError("no platform is configured to send to")
    everyone = render_for(core, brief, list(platforms))
    result = SendResult(date, brief.title, brief=brief)
    if chat_ids:
        if len(platforms) != 1:
            raise UsageError("--target needs --platform: chat ids belong to one platform")
        [name] = platforms
        targets = explicit_targets(core, name, chat_ids, date)
        fanouts = _explicit_fanouts(core, name, brief, everyone[name], targets)
    else:
        fanouts = _audience_fanouts(
            core,
            platforms,
            brief,
            everyone,
            audience,
            only=only,
            force=force,
            unresolved=result.unresolved,
        )
    if dry_run:
        ledger = {(d.platform, d.chat_id): d for d in core.store.deliveries(date)}
        for fanout in fanouts:
            count = len(await asyncio.to_thread(fanout.render))
            fresh = DeliveryStatus.PENDING if count else DeliveryStatus.SKIPPED
            async for page in fanout.pages():
                for target in page:
                    row = ledger.get((target.platform, target.chat_id))
                    status = row.status if row and not force else fresh
                    result.plan.append(PlannedDelivery(target, status, count))
        return result
    assert engine is not None, "a real send needs the delivery engine"
    result.report = await _deliver(
        core, engine, date, fanouts, force=force, progress=progress, detailed=detailed
    )
    for problem in result.unresolved:
        log.warning("cannot deliver: %s", problem)
    log.info("brief sent date=%s summary=%s", date.isoformat(), result.summary())
    return result


async def _deliver(
    core: Core,
    engine: DeliveryEngine,
    date: dt.date,
    fanouts: Sequence[Fanout],
    *,
    force: bool,
    progress: ProgressCallback | None,
    detailed: bool,
) -> DeliveryReport:
    """Each fan-out through the engine (a few at once), their reports as one. A rejected
    credential stops the fan-outs not yet started and is raised at the end."""
    report = DeliveryReport(date, detailed=detailed)
    gate = asyncio.Semaphore(GROUPS_AT_ONCE)
    fatal: list[BaseException] = []

    async def one(fanout: Fanout) -> None:
        async with gate:
            if fatal:
                return
            try:
                # a topic group's rendering: off the event loop (thousands of groups must
                # not hold up the bot's replies)
                parts = await asyncio.to_thread(fanout.render)
                if parts:
                    part = await engine.deliver(
                        date,
                        {fanout.platform: parts},
                        fanout.pages(),
                        force=force,
                        progress=progress,
                        detailed=detailed,
                    )
                    _merge(report, part)
                else:
                    await _skip_unmatched(
                        core, date, fanout, force=force, report=report, progress=progress
                    )
            except AuthRejected as exc:
                fatal.append(exc)
            except BaseException as exc:
                fatal.append(exc)
                raise

    results = await asyncio.gather(*(one(f) for f in fanouts), return_exceptions=True)
    for outcome in results:
        if isinstance(outcome, BaseException):
            raise outcome
    if fatal:
        raise fatal[0]
    return report


def _merge(into: DeliveryReport, part: DeliveryReport) -> None:
    into.counts.update(part.counts)
    into.outcomes.extend(part.outcomes)
    into.retries += part.retries
    into.rate_limited += part.rate_limited


async def _skip_unmatched(
    core: Core,
    date: dt.date,
    fanout: Fanout,
    *,
    force: bool,
    report: DeliveryReport,
    progress: ProgressCallback | None,
) -> None:
    """Readers whose topics match nothing of the day: a ledger row each, skipped with the
    reason, claimed like any delivery (so a concurrent run cannot send them, and a later run
    does not try again: skipped is final; ``--force`` decides afresh)."""
    store = core.store
    claim = run_id(default_worker_id())
    digest = parts_digest([])

    def record(page: list[Target]) -> list[Outcome]:
        rows = store.prepare_deliveries(
            date,
            page,
            parts_total={fanout.platform: 0},
            content_hash={fanout.platform: digest},
            force=force,
        )
        claims = store.claim_many(
            [row.id for row in rows],
            claim,
            content_hash={row.id: digest for row in rows},
            parts_total={row.id: 0 for row in rows},
            may_take_over=claim_is_stale,
        )
        outcomes = []
        for target, row, (result, claimed) in zip(page, rows, claims, strict=True):
            if result is ClaimResult.CLAIMED:
                store.finish_delivery(
                    row.id, DeliveryStatus.SKIPPED, error=fanout.reason, worker=claim
                )
                outcomes.append(Outcome(target, DeliveryStatus.SKIPPED, 0, fanout.reason))
            else:
                outcomes.append(unclaimed_outcome(target, row, result, claimed))
        return outcomes

    async for page in fanout.pages():
        if not page:
            continue
        for outcome in await asyncio.to_thread(record, page):
            report.add(outcome)
            if progress is not None:
                progress(outcome)
    log.info(
        "no matching items date=%s platform=%s topics=%s",
        date.isoformat(),
        fanout.platform,
        ",".join(fanout.topics),
    )


async def _as_pages(
    targets: list[Target] | AsyncIterator[list[Target]],
) -> AsyncIterator[list[Target]]:
    if isinstance(targets, list):
        if targets:
            yield targets
        return
    async for page in targets:
        yield page
