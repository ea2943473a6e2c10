"""What people and admins can ask the bot: one declarative command table, and the router
that parses, authorises and answers with platform-neutral replies.

The table is the single source of the help texts and of the command menus a platform
registers (on Telegram, admin commands only in the admins' own command scope).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import re
import secrets
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from bot.brief import assemble_brief
from bot.broadcast import MAX_TOPICS, canonical_topics, personal_brief
from bot.chat.cooldowns import Cooldowns
from bot.chat.texts import language_of, say
from bot.core import Core
from bot.domain import (
    Button,
    ChatKind,
    IncomingMessage,
    InlineCard,
    InlineQuery,
    OutgoingMessage,
    TargetKind,
)
from bot.editorial import is_public, readers_day
from bot.errors import BriefbotError
from bot.logs import log_id, scrub
from bot.platforms.base import ChatRules, Limits
from bot.reports import latest_day, platform_status
from bot.search import SearchPage
from bot.search.fold import fold
from bot.search.snippet import plain
from bot.search.tokens import parse_query
from bot.store.subscribers import Subscriber

log = logging.getLogger("briefbot.chat")

Replies = list[OutgoingMessage]
# (platform, date, audience) → what the send did; the service's send path.
SendBrief = Callable[[str, dt.date, str], Awaitable["SendOutcome"]]
# (chat id, user id) → is that user an administrator of that chat?
ChatAdminCheck = Callable[[str, str], Awaitable[bool]]
# deliver a late answer (an admin send's outcome) to the asker's chat, through the outbox
Notify = Callable[[IncomingMessage, OutgoingMessage], Awaitable[None]]
AUDIENCES = ("all", "channels", "subscribers")
INLINE_RESULTS = 10
# a brief already in the group is answered with at most this many headlines (one message)
HEADLINES = 15


@dataclass(frozen=True)
class SendOutcome:
    """What an admin is told when a send they started ends."""

    counts: dict[str, int]
    unresolved: list[str]


@dataclass(frozen=True)
class RecentSearch:
    """A person's last result list in a chat, for "#更多" and "3" (see :meth:`Commands.continue_`)."""

    query: str
    next_offset: int  # where the next page starts (-1: there is none)
    last_number: int  # the highest result number they have seen
    at: float


# How a query reached the bot: decides what happens when nothing matches.
COMMAND, PRIVATE, MENTION, PREFIX = "command", "private", "mention", "prefix"
# A prefix-triggered query without a separator after the prefix must be this short and read
# like keywords, not a sentence: "查芯片" is a query, "查了一下，好像官网还没更新" is not.
SHORT_QUERY = 12
SENTENCE_PUNCTUATION = frozenset("，。！？；…、,!?;~～")
QUERY_SEPARATORS = (" ", "\u3000", ":", "：")
# what follows 查 in everyday speech (查了, 查过, 查到, 查完, 查不到)
VERB_PARTICLES = frozenset("了过到完不得")
# "#更多"/"更多" continue the last list; people and pages remembered for this long, this many
MORE_WORDS = ("更多", "more", "next", "下一页")
RECENT_SECONDS = 15 * 60.0
RECENT_MAX = 2000
PAGES_MAX = 5000
# a reader's time of day (24-hour clock, ":" or the full-width "：") and how long a pause is
_TIME = re.compile(r"^(\d{1,2})[:：](\d{2})$")
_PAUSE = re.compile(r"^(\d{1,3})\s*([dw天周])$")
CLEAR_WORDS = frozenset({"off", "clear", "none", "-", "关闭", "取消", "默认"})
MAX_PAUSE_DAYS = 366
# the actions of the buttons under /start, a subscription and the settings
MENU_ACTIONS = ("sub", "unsub", "latest", "settings")


@dataclass(frozen=True)
class ChatCommand:
    """One row of the command table."""

    name: str
    admin: bool
    help_zh: str
    help_en: str
    args: str = ""  # how its argument looks, for the help text
    handler: Callable[[Commands, IncomingMessage, str], Awaitable[Replies]] | None = None

    def help(self, lang: str) -> str:
        return self.help_en if lang == "en" else self.help_zh


class Commands:
    """The chat handler of one platform: parse, authorise, answer."""

    def __init__(
        self,
        core: Core,
        platform: str,
        rules: ChatRules,
        *,
        send_brief: SendBrief | None = None,
        notify: Notify | None = None,
        chat_admin: ChatAdminCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = core
        self.platform = platform
        self.rules = rules
        self.send_brief = send_brief
        self.notify = notify
        self.chat_admin = chat_admin
        self.cooldowns = Cooldowns(rules.user_cooldown, rules.group_cooldown, clock=clock)
        self._background: set[asyncio.Task[None]] = set()
        self._by_name = {command.name: command for command in COMMANDS}
        self._clock = clock
        # (chat, user) → their last result list; page token → query (for buttons)
        self._recent: OrderedDict[tuple[str, str], RecentSearch] = OrderedDict()
        # (query, language) by token: random, so a button from before a restart never finds
        # another query's token
        self._pages: OrderedDict[str, tuple[str, str]] = OrderedDict()

    # -- entry point -----------------------------------------------------------------------

    async def __call__(self, message: IncomingMessage) -> Replies:
        if message.action is not None:
            return await self._pressed(message)
        text = message.text.strip()
        command, argument, head = self._split_command(text)
        if command is not None:
            if command.name != "search" and self._flooding(message):
                return []
            return await self._run(command, message, argument)
        if head is not None and self.rules.command_prefix not in self.rules.query_prefixes:
            return self._unknown_command(message, head)
        if text in self.rules.hot_keywords:
            if self._flooding(message):
                return []
            return self._with_mention(message, self._latest(message))
        continued = await self._continue(message, text)
        if continued is not None:
            return continued
        private = message.chat_kind is ChatKind.PRIVATE
        for prefix in self.rules.query_prefixes:
            if text.startswith(prefix):
                query = prefixed_query(text[len(prefix) :])
                if query is not None:
                    return await self.search(message, query, trigger=PRIVATE if private else PREFIX)
                break  # conversation that happens to start like a query
        if private and self.rules.search_in_private:
            return await self.search(message, text, trigger=PRIVATE)
        if message.mentions_bot:
            return await self.search(message, text, trigger=MENTION)
        return []  # chatter in a group is not for us

    def _split_command(self, text: str) -> tuple[ChatCommand | None, str, str | None]:
        """(the command, its argument, what followed the prefix) for "/name arg"."""
        prefix = self.rules.command_prefix
        if not text.startswith(prefix) or len(text) == len(prefix):
            return None, "", None
        head, _, rest = text[len(prefix) :].partition(" ")
        name = head.split("@", 1)[0].lower()  # "/search@briefbot" in Telegram groups
        return self._by_name.get(name), rest.strip(), head

    def _unknown_command(self, message: IncomingMessage, head: str) -> Replies:
        # in a group, a bare "/foo" may be for another bot: answer it only when addressed
        if message.chat_kind is not ChatKind.PRIVATE and "@" not in head:
            return []
        if self._flooding(message):
            return []
        lang = self._lang(message)
        name = head.split("@", 1)[0][:32]
        return self._reply(
            message,
            say(
                "unknown_command",
                lang,
                command=self.rules.command_prefix + name,
                help=f"{self.rules.command_prefix}help",
            ),
        )

    async def _run(self, command: ChatCommand, message: IncomingMessage, arg: str) -> Replies:
        if command.admin and not self.is_admin(message):
            log.warning(
                "refused admin command platform=%s command=%s user=%s chat=%s",
                self.platform,
                command.name,
                log_id(self.platform, message.user_id),
                log_id(self.platform, message.chat_id),
            )
            return self._reply(message, say("not_admin", self._lang(message)))
        assert command.handler is not None
        return await command.handler(self, message, arg)

    def is_admin(self, message: IncomingMessage) -> bool:
        return message.user_id in self.rules.admins

    # -- public commands -------------------------------------------------------------------

    async def start(self, message: IncomingMessage, arg: str = "") -> Replies:
        """/start, and deep links: t.me/<bot>?start=subscribe arrives as "/start subscribe"."""
        if arg.strip().lower() == "subscribe":
            return await self.subscribe(message)
        return self._with_menu(message, await self.help(message))

    async def help(self, message: IncomingMessage, _arg: str = "") -> Replies:
        lang = self._lang(message)
        p = self.rules.command_prefix
        rows = [
            (f"{p}{c.name}" + (f" {c.args}" if c.args else ""), c.help(lang))
            for c in COMMANDS
            if c.name not in ("start", "help") and (not c.admin or self.is_admin(message))
        ]
        return self.core.renderer.text(
            self.platform, "help.j2", self._limits(), lang=lang, commands=rows, prefix=p
        )

    async def subscribe(self, message: IncomingMessage, arg: str = "") -> Replies:
        """/subscribe, and /subscribe 芯片 开源: only the items about those topics (added to
        the reader's topics; /unsubscribe 芯片 drops one)."""
        refused = await self._not_allowed(message)
        if refused is not None:
            return refused
        lang = self._lang(message)
        p = self.rules.command_prefix
        store = self.core.store
        words = arg.split()
        for word in words:
            if not parse_query(word, aliases=self.core.aliases).groups:
                return self._reply(message, say("bad_topic", lang, topic=word[:32]))
        current = store.subscriber(self.platform, message.chat_id)
        had = current.topics if current is not None and current.active else ()
        topics = canonical_topics([*had, *words]) if words else had
        if len(topics) > MAX_TOPICS:
            return self._reply(message, say("too_many_topics", lang, max=MAX_TOPICS))
        kind = TargetKind.SUBSCRIBER if message.chat_kind is ChatKind.PRIVATE else TargetKind.GROUP
        added = store.add_subscriber(
            self.platform, message.chat_id, kind, name=message.user_name, language=lang
        )
        if added:  # a new subscription starts afresh: every item (unless asked), not paused
            store.set_topics(self.platform, message.chat_id, topics)
            store.pause_subscriber(self.platform, message.chat_id, None)
        elif words:
            store.set_topics(self.platform, message.chat_id, topics)
        if words:
            text = say("topics_set", lang, topics=_listed(topics, lang), prefix=p)
        else:
            text = say("subscribed" if added else "already_subscribed", lang, prefix=p)
            if topics:
                text += "\n" + say("topics_list", lang, topics=_listed(topics, lang))
        return self._with_menu(message, self._reply(message, text))

    async def unsubscribe(self, message: IncomingMessage, arg: str = "") -> Replies:
        """/unsubscribe stops the brief; /unsubscribe 芯片 drops that topic only."""
        refused = await self._not_allowed(message)
        if refused is not None:
            return refused
        lang = self._lang(message)
        store = self.core.store
        words = arg.split()
        if not words:
            left = store.deactivate_subscriber(self.platform, message.chat_id, "unsubscribed")
            return self._reply(message, say("unsubscribed" if left else "not_subscribed", lang))
        current = self._subscription_of(message)
        if current is None:
            return self._reply(message, say("not_subscribed", lang))
        dropped = {fold(word) for word in words}
        removed = [t for t in current.topics if fold(t) in dropped]
        if not removed:
            return self._reply(message, say("topic_not_found", lang, topics=" ".join(words)[:64]))
        kept = tuple(t for t in current.topics if fold(t) not in dropped)
        store.set_topics(self.platform, message.chat_id, kept)
        text = say("topic_removed", lang, removed=_listed(removed, lang))
        if kept:
            text += say("topics_left", lang, topics=_listed(kept, lang))
        else:
            text += say("topics_all_removed", lang)
        return self._reply(message, text)

    async def topics(self, message: IncomingMessage, _arg: str = "") -> Replies:
        lang = self._lang(message)
        p = self.rules.command_prefix
        current = self._subscription_of(message)
        if current is None:
            return self._reply(message, say("subscribe_first", lang, prefix=p))
        if not current.topics:
            return self._reply(message, say("topics_none", lang, prefix=p))
        return self._reply(message, say("topics_list", lang, topics=_listed(current.topics, lang)))

    async def time_of_day(self, message: IncomingMessage, arg: str = "") -> Replies:
        """/time 07:30: the reader's own time of day (in their /tz, else the schedule's zone);
        /time off: the platform's time for everyone again."""
        reader = await self._reader(message)
        if isinstance(reader, list):
            return reader
        current, lang, p = reader
        zone = current.timezone or self._default_zone()
        arg = arg.strip()
        if arg.lower() in CLEAR_WORDS:
            self.core.store.set_send_time(self.platform, message.chat_id, None)
            text = say("time_cleared", lang, time=self._schedule(), zone=self._default_zone())
            return self._reply(message, text)
        parsed = _time_of_day(arg)
        if parsed is None:
            return self._reply(message, say("time_usage", lang, prefix=p))
        self.core.store.set_send_time(self.platform, message.chat_id, parsed)
        text = say("time_set", lang, time=parsed, zone=zone)
        if current.timezone is None:  # the Bot API does not say where a user is: ask
            text += "\n" + say("time_ask_zone", lang, zone=zone, prefix=p)
        return self._reply(message, text)

    async def _reader(self, message: IncomingMessage) -> tuple[Subscriber, str, str] | Replies:
        """The subscription a reader's /time, /tz or /pause changes, with the reply language
        and the command prefix; or the reply when they may not, or have not subscribed."""
        refused = await self._not_allowed(message)
        if refused is not None:
            return refused
        lang = self._lang(message)
        p = self.rules.command_prefix
        current = self._subscription_of(message)
        if current is None:
            return self._reply(message, say("subscribe_first", lang, prefix=p))
        return current, lang, p

    async def time_zone(self, message: IncomingMessage, arg: str = "") -> Replies:
        """/tz Europe/Berlin: the zone the reader's /time is in (an IANA name)."""
        reader = await self._reader(message)
        if isinstance(reader, list):
            return reader
        current, lang, p = reader
        if not arg.strip():
            return self._reply(message, say("tz_usage", lang, prefix=p))
        zone = zone_named(arg)
        if zone is None:
            return self._reply(message, say("tz_unknown", lang, zone=arg.strip()[:64]))
        self.core.store.set_timezone(self.platform, message.chat_id, zone)
        now = dt.datetime.now(zoneinfo.ZoneInfo(zone)).strftime("%H:%M")
        text = say("tz_set", lang, zone=zone, now=now)
        if current.send_time is None:
            text += "\n" + say("tz_pick_time", lang, prefix=p)
        return self._reply(message, text)

    async def pause(self, message: IncomingMessage, arg: str = "") -> Replies:
        """/pause 7d, 3d, 2w or a date: no brief until that day begins (in the reader's zone)."""
        reader = await self._reader(message)
        if isinstance(reader, list):
            return reader
        current, lang, p = reader
        tz = zoneinfo.ZoneInfo(current.timezone or self._default_zone())
        today = dt.datetime.now(tz).date()
        text = arg.strip().lower()
        span = _PAUSE.match(text)
        if span is not None:
            days = int(span[1]) * (7 if span[2] in "w周" else 1)
            resume_on = today + dt.timedelta(days=days)
        else:
            try:
                resume_on = dt.date.fromisoformat(text)
            except ValueError:
                return self._reply(message, say("pause_usage", lang, prefix=p))
        if resume_on <= today:
            return self._reply(message, say("pause_past", lang))
        if (resume_on - today).days > MAX_PAUSE_DAYS:
            return self._reply(message, say("pause_too_long", lang, days=MAX_PAUSE_DAYS))
        until = dt.datetime.combine(resume_on, dt.time(), tz)
        self.core.store.pause_subscriber(self.platform, message.chat_id, until)
        return self._reply(message, say("paused", lang, until=resume_on.isoformat(), prefix=p))

    async def resume(self, message: IncomingMessage, _arg: str = "") -> Replies:
        refused = await self._not_allowed(message)
        if refused is not None:
            return refused
        lang = self._lang(message)
        current = self._subscription_of(message)
        if current is None:
            return self._reply(message, say("not_subscribed", lang))
        if not current.paused_at(dt.datetime.now(dt.UTC)):
            return self._reply(message, say("not_paused", lang))
        self.core.store.pause_subscriber(self.platform, message.chat_id, None)
        return self._reply(message, say("resumed", lang))

    async def settings(self, message: IncomingMessage, _arg: str = "") -> Replies:
        """What the reader chose (topics, time, zone, pause), with the menu's buttons."""
        lang = self._lang(message)
        p = self.rules.command_prefix
        current = self._subscription_of(message)
        lines = [say("settings_title", lang)]
        if current is None:
            lines.append(say("settings_not_subscribed", lang, prefix=p))
            return self._with_menu(message, self._reply(message, "\n".join(lines)))
        if current.topics:
            lines.append(say("settings_topics", lang, topics=_listed(current.topics, lang)))
        else:
            lines.append(say("settings_all_items", lang))
        zone = current.timezone or self._default_zone()
        if current.send_time:
            lines.append(say("settings_own_time", lang, time=current.send_time, zone=zone))
        else:
            lines.append(
                say("settings_schedule", lang, schedule=self._schedule(), zone=self._default_zone())
            )
        now = dt.datetime.now(dt.UTC)
        if current.paused_until is not None and current.paused_at(now):
            local = current.paused_until.astimezone(zoneinfo.ZoneInfo(zone))
            lines.append(say("settings_paused", lang, until=local.strftime("%Y-%m-%d %H:%M")))
        lines += ["", say("settings_how", lang, prefix=p)]
        return self._with_menu(message, self._reply(message, "\n".join(lines)))

    async def _not_allowed(self, message: IncomingMessage) -> Replies | None:
        """In a group only a chat administrator may change the group's subscription."""
        if message.chat_kind is ChatKind.PRIVATE:
            return None
        allowed = self.chat_admin is not None and await self.chat_admin(
            message.chat_id, message.user_id
        )
        if allowed:
            return None
        return self._reply(message, say("group_admin_only", self._lang(message)))

    def _subscription_of(self, message: IncomingMessage) -> Subscriber | None:
        """The chat's active subscription, or None."""
        found = self.core.store.subscriber(self.platform, message.chat_id)
        return found if found is not None and found.active else None

    def _default_zone(self) -> str:
        return self.core.settings.schedule.timezone

    def _schedule(self) -> str:
        """When the platform sends to subscribers without a time of their own."""
        from bot.platforms import spec

        entry = spec(self.platform)
        return (
            entry.subscriber_schedule(self.core.settings.platform(self.platform))
            or self.core.settings.schedule.default
        )

    def _with_menu(self, message: IncomingMessage, replies: Replies) -> Replies:
        """The buttons 订阅 / 退订 / 最新一期 / 设置 under the last reply (where there are
        buttons)."""
        if not self.rules.buttons or not replies:
            return replies
        lang = self._lang(message)
        labels = ("button_subscribe", "button_unsubscribe", "button_latest", "button_settings")
        buttons = tuple(
            Button(say(label, lang), action)
            for label, action in zip(labels, MENU_ACTIONS, strict=True)
        )
        return [*replies[:-1], replace(replies[-1], buttons=buttons)]

    async def latest(self, message: IncomingMessage, _arg: str = "") -> Replies:
        return self._latest(message)

    def _latest(self, message: IncomingMessage) -> Replies:
        """The latest brief; in a group that already received it, its headlines and when it
        was sent instead of the whole brief again, and at most once per latest_cooldown."""
        lang = self._lang(message)
        date = readers_day(self.core, self.core.today())
        brief = assemble_brief(self.core.store, date, self.core.settings.brief) if date else None
        if brief is None:
            return self._reply(message, say("no_brief", lang))
        if message.chat_kind is not ChatKind.PRIVATE:
            if not self.is_admin(message) and self.cooldowns.cooling(
                message, scope="latest", seconds=self.rules.latest_cooldown, per_user=False
            ):
                return []
            sent_at = self.core.store.sent_at(brief.date, self.platform, message.chat_id)
            if sent_at is not None:
                local = sent_at.astimezone(self.core.settings.tz)
                titles = [" ".join(item.title.split()) for item in brief.items]
                lines = [f"{n}. {title[:80]}" for n, title in enumerate(titles[:HEADLINES], 1)]
                if len(titles) > HEADLINES:
                    lines.append("…")
                headlines = "\n".join(lines)
                when = (
                    local.strftime("%H:%M")
                    if local.date() == brief.date
                    else local.strftime("%Y-%m-%d %H:%M")
                )
                text = say("already_sent", lang, date=brief.date.isoformat(), time=when)
                return self._reply(message, f"{text}\n{headlines}")
        return self.core.renderer.brief(brief, self.platform, self._limits())

    async def search(
        self, message: IncomingMessage, query: str, *, trigger: str = COMMAND
    ) -> Replies:
        lang = self._lang(message)
        query = query.strip()
        if self.cooldowns.cooling(message, record=False) and not self.is_admin(message):
            return []
        if not query:
            # hints have a cooldown of their own: limited, yet never in the way of the answer
            if self.cooldowns.cooling(message, scope="hint"):
                return []
            prefix = (
                self.rules.query_prefixes[0]
                if self.rules.query_prefixes
                else f"{self.rules.command_prefix}search "
            )
            return self._reply(message, say("empty_query", lang, example=f"{prefix}芯片"))
        page = await asyncio.to_thread(self.core.search, query)
        if not page.query.groups:
            if trigger == PREFIX or self.cooldowns.cooling(message, scope="hint"):
                return []
            return self._reply(message, say("bad_query", lang))
        group = message.chat_kind is not ChatKind.PRIVATE
        if page.partial and trigger == PREFIX and group:
            page = replace(page, results=[], total=0, partial=False)  # conversation: all or none
        await asyncio.to_thread(
            self.core.store.count_query,
            " ".join(page.query.terms),
            found=page.total > 0,
            day=self.core.today(),
        )
        if not page.results:
            if group and trigger == PREFIX:
                return []  # a group is not told about every word that found nothing
            if group:
                self.cooldowns.cooling(message)
                return self._reply(message, say("no_results", lang, query=page.query.text))
        self.cooldowns.cooling(message)  # records this answer's time
        replies = self._results(message, page, lang)
        if message.chat_kind is not ChatKind.PRIVATE and self.rules.thread_replies:
            replies = [replace(replies[0], reply_to=message.message_id), *replies[1:]]
        return self._with_mention(message, replies)

    def _results(
        self, message: IncomingMessage, page: SearchPage, lang: str, *, edit: str | None = None
    ) -> Replies:
        """A page of results as one message: with buttons for the next and previous pages
        where the platform has buttons, else a line saying how to see more. Results that do
        not fit in one message move to the next page (a group gets one message per query)."""
        while True:
            replies = self._render_page(page, lang)
            if len(replies) == 1 or len(page.results) <= 1:
                break
            page = replace(page, results=page.results[:-1])
        if page.results:
            self._remember(message, page)
        if edit is not None and len(replies) == 1:
            replies = [replace(replies[0], edit=edit)]
        return replies

    def _render_page(self, page: SearchPage, lang: str) -> Replies:
        more = ""
        buttons: tuple[Button, ...] = ()
        if self.rules.buttons:
            token = self._page_token(page.query.text, lang)
            if page.offset > 0:
                previous = max(0, page.offset - self.core.settings.search.limit)
                buttons += (Button(say("previous_page", lang), f"page:{token}:{previous}"),)
            if page.has_more:
                following = page.offset + len(page.results)
                buttons += (Button(say("next_page", lang), f"page:{token}:{following}"),)
        elif page.has_more:
            more = say("more_hint", lang, prefix=self.rules.command_prefix)
        replies = self.core.renderer.search_results(
            page.query.text,
            [],
            self.platform,
            self._limits(),
            total=page.total,
            results=page.results,
            lang=lang,
            offset=page.offset,
            partial=page.partial,
            more=more,
            total_exact=page.total_exact,
        )
        if buttons:
            replies[-1] = replace(replies[-1], buttons=buttons)
        return replies

    def _remember(self, message: IncomingMessage, page: SearchPage) -> None:
        key = (message.chat_id, message.user_id)
        previous = self._recent.pop(key, None)
        if previous is not None and previous.query != page.query.text:
            previous = None
        self._recent[key] = RecentSearch(
            query=page.query.text,
            next_offset=page.offset + len(page.results) if page.has_more else -1,
            last_number=max(
                page.offset + len(page.results), previous.last_number if previous else 0
            ),
            at=self._clock(),
        )
        while len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)

    def _page_token(self, query: str, lang: str) -> str:
        for token, known in self._pages.items():
            if known == (query, lang):
                self._pages.move_to_end(token)
                return token
        token = secrets.token_hex(6)
        self._pages[token] = (query, lang)
        while len(self._pages) > PAGES_MAX:
            self._pages.popitem(last=False)
        return token

    async def _continue(self, message: IncomingMessage, text: str) -> Replies | None:
        """ "#更多" (or "更多") shows the next page of the asker's last list; a number shows
        that result whole. None: not a continuation (then it may be a query)."""
        recent = self._recent.get((message.chat_id, message.user_id))
        if recent is None or self._clock() - recent.at > RECENT_SECONDS:
            return None
        word = text.removeprefix(self.rules.command_prefix).strip().lower()
        lang = self._lang(message)
        if word in MORE_WORDS:
            if recent.next_offset < 0:
                return self._reply(message, say("no_more", lang))
            page = await asyncio.to_thread(
                self.core.search, recent.query, offset=recent.next_offset
            )
            return self._with_mention(message, self._results(message, page, lang))
        if word.isdecimal() and len(word) <= 3:
            if not 1 <= int(word) <= recent.last_number:
                return None
            page = await asyncio.to_thread(
                self.core.search, recent.query, offset=int(word) - 1, limit=1
            )
            if not page.results:
                return None
            card = self.core.renderer.card(
                page.results[0], self.platform, self._limits(), lang=lang
            )
            return self._with_mention(message, [card])
        return None

    async def _pressed(self, message: IncomingMessage) -> Replies:
        """A button: a result list's page (shown in the same message, in the language the
        list was in, whoever presses), a digest's whole text, or the menu's commands."""
        kind, _, rest = (message.action or "").partition(":")
        if kind == "full":
            return await self._full_text(message, rest)
        if kind in MENU_ACTIONS and not rest:
            handler = {
                "sub": Commands.subscribe,
                "unsub": Commands.unsubscribe,
                "latest": Commands.latest,
                "settings": Commands.settings,
            }[kind]
            return await handler(self, message, "")
        token, _, offset_text = rest.partition(":")
        known = self._pages.get(token)
        if kind != "page" or known is None or not offset_text.isdecimal():
            expired = say("expired", self._lang(message))
            return [OutgoingMessage(expired, reply_to=message.message_id)]
        query, lang = known
        page = await asyncio.to_thread(self.core.search, query, offset=int(offset_text))
        return self._results(message, page, lang, edit=message.message_id)

    async def _full_text(self, message: IncomingMessage, date_text: str) -> Replies:
        """A digest's 全文 / Full button: the whole brief of that day for the one who pressed
        (a reader with topics gets their matching items), in a group or channel sent to
        their private chat rather than to everyone."""
        lang = self._lang(message)
        try:
            date = dt.date.fromisoformat(date_text)
        except ValueError:
            return [OutgoingMessage(say("expired", lang), reply_to=message.message_id)]
        public = await asyncio.to_thread(is_public, self.core, date, self.core.today())
        brief = (
            await asyncio.to_thread(assemble_brief, self.core.store, date, self.core.settings.brief)
            if public
            else None
        )
        if brief is None:
            return self._reply(message, say("no_brief", lang))
        current = self._subscription_of(message)
        if current is not None and current.topics:
            brief = personal_brief(self.core, brief, current.topics) or brief
        parts = self.core.renderer.brief(brief, self.platform, self._limits())
        private = message.chat_kind is not ChatKind.PRIVATE
        return [replace(part, silent=i > 0, private=private) for i, part in enumerate(parts)]

    async def inline(self, query: InlineQuery) -> list[InlineCard]:
        """Cards for "@bot words" typed in any chat: the best results, each shareable."""
        lang = "en" if (query.language or "").lower().startswith("en") else "zh"
        if not query.query.strip():
            return []
        page = await asyncio.to_thread(self.core.search, query.query, limit=INLINE_RESULTS)
        cards = []
        for result in page.results:
            message = self.core.renderer.card(result, self.platform, self._limits(), lang=lang)
            cards.append(
                InlineCard(
                    id=str(result.item_id),
                    title=" ".join(result.item.title.split())[:200],
                    description=f"{result.item.date.isoformat()} · {plain(result.snippet)}"[:200],
                    message=message,
                    url=result.item.primary_url,
                )
            )
        return cards

    def _flooding(self, message: IncomingMessage) -> bool:
        """The cooldowns apply to every answer, not only searches, in groups and private
        chats alike: each reply counts against the account's daily cap. Admins are exempt."""
        if self.is_admin(message):
            return False
        return self.cooldowns.cooling(message)

    # -- admin commands --------------------------------------------------------------------

    def _admin_args(
        self, message: IncomingMessage, arg: str
    ) -> tuple[dt.date | None, str] | Replies:
        date: dt.date | None = None
        audience = "all"
        for word in arg.split():
            if word in AUDIENCES:
                audience = word
                continue
            try:
                date = dt.date.fromisoformat(word)
            except ValueError:
                return self._reply(message, say("bad_date", self._lang(message)))
        return date, audience

    async def stats(self, message: IncomingMessage, _arg: str = "") -> Replies:
        return self.core.renderer.text(
            self.platform,
            "stats.j2",
            self._limits(),
            lang=self._lang(message),
            stats=self.stats_counts(),
        )

    async def preview(self, message: IncomingMessage, arg: str) -> Replies:
        parsed = self._admin_args(message, arg)
        if isinstance(parsed, list):
            return parsed
        date = parsed[0] or latest_day(self.core.store, self.core.today())
        brief = assemble_brief(self.core.store, date, self.core.settings.brief) if date else None
        if brief is None:
            return self._reply(message, say("no_brief", self._lang(message)))
        return self.core.renderer.brief(brief, self.platform, self._limits())

    async def approve(self, message: IncomingMessage, arg: str) -> Replies:
        """An admin approves a day's brief as it is now (the schedule sends approved ones);
        recorded with the admin's platform user id."""
        from bot.editorial import approve

        lang = self._lang(message)
        parsed = self._admin_args(message, arg)
        if isinstance(parsed, list):
            return parsed
        date = parsed[0] or latest_day(self.core.store, self.core.today())
        if date is None:
            return self._reply(message, say("no_brief", lang))
        actor = f"{self.platform}:{message.user_id}"
        try:
            await asyncio.to_thread(approve, self.core, date, actor)
        except BriefbotError as exc:
            return self._reply(message, say("approve_failed", lang, error=str(exc)))
        return self._reply(message, say("approved", lang, date=date.isoformat()))

    async def send(self, message: IncomingMessage, arg: str) -> Replies:
        lang = self._lang(message)
        parsed = self._admin_args(message, arg)
        if isinstance(parsed, list):
            return parsed
        date = parsed[0] or latest_day(self.core.store, self.core.today())
        if date is None or not self.core.store.items_on(date):
            return self._reply(message, say("no_brief", lang))
        if self.send_brief is None:
            return self._reply(
                message, say("send_failed", lang, error="sending is not available here")
            )
        log.info(
            "admin send platform=%s user=%s date=%s audience=%s",
            self.platform,
            log_id(self.platform, message.user_id),
            date,
            parsed[1],
        )
        task = asyncio.create_task(self._send_and_report(message, date, parsed[1]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return self._reply(message, say("sending", lang, date=date.isoformat()))

    async def _send_and_report(
        self, message: IncomingMessage, date: dt.date, audience: str
    ) -> None:
        assert self.send_brief is not None
        lang = self._lang(message)
        try:
            result = await self.send_brief(self.platform, date, audience)
            counts = result.counts
            text = say(
                "sent",
                lang,
                date=date.isoformat(),
                sent=counts.get("sent", 0),
                # a configured group that could not be found was not reached: a failure
                failed=counts.get("failed", 0) + counts.get("gone", 0) + len(result.unresolved),
                skipped=counts.get("skipped", 0),
                pending=counts.get("pending", 0),
            )
            if result.unresolved:
                text += "\n" + say("unresolved", lang, names="; ".join(result.unresolved))
        except BriefbotError as exc:
            text = say("send_failed", lang, error=scrub(str(exc)))
        except Exception as exc:  # the admin must hear about it, whatever it was
            log.exception("admin send failed")
            text = say("send_failed", lang, error=scrub(repr(exc)))
        if self.notify is not None:
            await self.notify(message, OutgoingMessage(text, mentions=self._mentions(message)))

    async def wait_background(self, grace: float | None = None) -> None:
        """Let admin-triggered sends finish; after ``grace`` seconds cancel them (the
        ledger keeps what they had not sent)."""
        if not self._background:
            return
        _done, pending = await asyncio.wait(set(self._background), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def stats_counts(self) -> dict[str, object]:
        store = self.core.store
        status = platform_status(store, self.platform)
        latest = latest_day(store, self.core.today())
        last = status["last_delivery"] or {}
        return {
            "platform": self.platform,
            "subscribers": status["subscribers"],
            "items": store.count_items(),
            "latest_date": latest.isoformat() if latest else "-",
            "last_delivery_date": last.get("date", "-"),
            "last_delivery": {k: v for k, v in last.items() if k != "date"},
        }

    # -- replies ---------------------------------------------------------------------------

    def _limits(self) -> Limits:
        return self.core.limits(self.platform)

    def _lang(self, message: IncomingMessage) -> str:
        """The asker's language (Telegram's language_code), else the chat's configured one."""
        if message.language:
            return language_of(message)
        return self.rules.language

    def _mentions(self, message: IncomingMessage) -> tuple[str, ...]:
        if message.chat_kind is ChatKind.GROUP and self.rules.mention_asker_in_groups:
            return (message.user_id,)
        return ()

    def _reply(self, message: IncomingMessage, text: str) -> Replies:
        return [OutgoingMessage(text, mentions=self._mentions(message))]

    def _with_mention(self, message: IncomingMessage, replies: Replies) -> Replies:
        mentions = self._mentions(message)
        if not mentions or not replies:
            return replies
        first, *rest = replies
        return [replace(first, mentions=mentions), *rest]


async def _search_command(commands: Commands, message: IncomingMessage, arg: str) -> Replies:
    return await commands.search(message, arg)


def _listed(topics: Sequence[str], lang: str = "zh") -> str:
    return (", " if lang == "en" else "、").join(topics)


def _time_of_day(text: str) -> str | None:
    """ "7:30", "07:30", "7：30" → "07:30" (zero-padded: stored times compare as text)."""
    match = _TIME.match(text.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return f"{int(match[1]):02d}:{match[2]}"


@functools.cache
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def zone_named(text: str) -> str | None:
    """The IANA name a reader meant ("europe/berlin" → "Europe/Berlin"), or None when the
    system's time zone database has no such zone."""
    wanted = text.strip().replace(" ", "_")
    if not wanted or len(wanted) > 64:
        return None
    name = _zones().get(wanted.lower())
    if name is None:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


COMMANDS: tuple[ChatCommand, ...] = (
    ChatCommand("start", False, "开始使用", "Start", handler=Commands.start),
    ChatCommand("help", False, "帮助", "Help", handler=Commands.help),
    ChatCommand(
        "subscribe",
        False,
        "订阅每日AI简报；加关键词则只收相关条目",
        "Subscribe to the daily AI brief; with keywords, only matching items",
        args="[关键词…]",
        handler=Commands.subscribe,
    ),
    ChatCommand(
        "unsubscribe",
        False,
        "退订；加关键词则只取消该关键词",
        "Unsubscribe; with a keyword, drop that topic",
        args="[关键词]",
        handler=Commands.unsubscribe,
    ),
    ChatCommand("topics", False, "我订阅的关键词", "Your topics", handler=Commands.topics),
    ChatCommand(
        "time",
        False,
        "每天推送的时间（off 恢复统一时间）",
        "Your time of day for the brief (off: everyone's time)",
        args="HH:MM",
        handler=Commands.time_of_day,
    ),
    ChatCommand(
        "tz",
        False,
        "你的时区，如 Europe/Berlin",
        "Your time zone, e.g. Europe/Berlin",
        args="Area/City",
        handler=Commands.time_zone,
    ),
    ChatCommand(
        "pause",
        False,
        "暂停推送（7d、2w 或日期）",
        "Pause the brief (7d, 2w or a date)",
        args="7d|2w|YYYY-MM-DD",
        handler=Commands.pause,
    ),
    ChatCommand("resume", False, "恢复推送", "Resume the brief", handler=Commands.resume),
    ChatCommand(
        "settings", False, "我的订阅设置", "Your subscription settings", handler=Commands.settings
    ),
    ChatCommand("latest", False, "最新一期简报", "The latest brief", handler=Commands.latest),
    ChatCommand(
        "search", False, "搜索简报内容", "Search the briefs", args="关键词", handler=_search_command
    ),
    ChatCommand(
        "send",
        True,
        "发送简报",
        "Send a brief",
        args="[YYYY-MM-DD] [all|channels|subscribers]",
        handler=Commands.send,
    ),
    ChatCommand(
        "preview",
        True,
        "预览简报",
        "Preview a brief",
        args="[YYYY-MM-DD]",
        handler=Commands.preview,
    ),
    ChatCommand(
        "approve",
        True,
        "批准简报",
        "Approve a brief",
        args="[YYYY-MM-DD]",
        handler=Commands.approve,
    ),
    ChatCommand("stats", True, "统计", "Statistics", handler=Commands.stats),
)


def prefixed_query(rest: str) -> str | None:
    """The query after a query prefix, or None when it reads as conversation.

    With a separator ("查 芯片", "查：芯片") it is a query. Without one it must be short and
    free of sentence punctuation, and 查 must not be the verb of a sentence (查了, 查到); a
    small number alone ("#2") picks from a result list, it is not a query."""
    if not rest.strip():
        return ""  # the prefix alone: the asker gets a hint
    if rest.startswith(QUERY_SEPARATORS):
        return rest.lstrip("".join(QUERY_SEPARATORS))
    if rest[0] in VERB_PARTICLES or len(rest) > SHORT_QUERY:
        return None
    if rest.isdecimal() and len(rest) <= 3:  # "#1": a list number, meaningful only after one
        return None
    if any(char in SENTENCE_PUNCTUATION for char in rest):
        return None
    return rest


def menu(commands: Sequence[ChatCommand] = COMMANDS) -> list[tuple[str, str, str, bool]]:
    """(name, Chinese, English, admin-only) of each command, for a platform's command menu."""
    return [(c.name, c.help_zh, c.help_en, c.admin) for c in commands]
