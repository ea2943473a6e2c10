"""What people and admins can ask the bot: one declarative command table, and the router
that parses, authorises and answers with platform-neutral replies.

The table is the single source of the help texts and of the command menus a platform
registers (on Telegram, admin commands only in the admins' own command scope).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.brief import assemble_brief
from bot.chat.cooldowns import Cooldowns
from bot.chat.texts import language_of, say
from bot.core import Core
from bot.domain import ChatKind, IncomingMessage, OutgoingMessage, TargetKind
from bot.errors import BriefbotError
from bot.logs import log_id, scrub
from bot.platforms.base import ChatRules, Limits
from bot.reports import latest_day, platform_status
from bot.search import query_terms, search_page

log = logging.getLogger("briefbot.chat")

Replies = list[OutgoingMessage]
# (platform, date, audience) → what the send did; the service's send path.
SendBrief = Callable[[str, dt.date, str], Awaitable["SendOutcome"]]
# (chat id, user id) → is that user an administrator of that chat?
ChatAdminCheck = Callable[[str, str], Awaitable[bool]]
# deliver a late answer (an admin send's outcome) to the asker's chat, through the outbox
Notify = Callable[[IncomingMessage, OutgoingMessage], Awaitable[None]]
AUDIENCES = ("all", "channels", "subscribers")


@dataclass(frozen=True)
class SendOutcome:
    """What an admin is told when a send they started ends."""

    counts: dict[str, int]
    unresolved: list[str]


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

    # -- entry point -----------------------------------------------------------------------

    async def __call__(self, message: IncomingMessage) -> Replies:
        text = message.text.strip()
        command, argument = self._split_command(text)
        if command is not None:
            if command.name != "search" and self._flooding(message):
                return []
            return await self._run(command, message, argument)
        if text in self.rules.hot_keywords:
            if self._flooding(message):
                return []
            return self._with_mention(message, self._latest(message))
        if message.chat_kind is ChatKind.PRIVATE and self.rules.search_in_private:
            return await self.search(message, text)
        if message.mentions_bot:
            return await self.search(message, text)
        for prefix in self.rules.query_prefixes:
            if text.startswith(prefix):
                return await self.search(message, text[len(prefix) :])
        return []  # chatter in a group is not for us

    def _split_command(self, text: str) -> tuple[ChatCommand | None, str]:
        prefix = self.rules.command_prefix
        if not text.startswith(prefix):
            return None, ""
        head, _, rest = text[len(prefix) :].partition(" ")
        name = head.split("@", 1)[0].lower()  # "/search@briefbot" in Telegram groups
        return self._by_name.get(name), rest.strip()

    async def _run(self, command: ChatCommand, message: IncomingMessage, arg: str) -> Replies:
        if command.admin and not self.is_admin(message):
            log.warning(
                "refused admin command platform=%s command=%s user=%s chat=%s",
                self.platform,
                command.name,
                log_id(self.platform, message.user_id),
                log_id(self.platform, message.chat_id),
            )
            return self._reply(message, say("not_admin", language_of(message)))
        assert command.handler is not None
        return await command.handler(self, message, arg)

    def is_admin(self, message: IncomingMessage) -> bool:
        return message.user_id in self.rules.admins

    # -- public commands -------------------------------------------------------------------

    async def help(self, message: IncomingMessage, _arg: str = "") -> Replies:
        lang = language_of(message)
        p = self.rules.command_prefix
        rows = [
            (f"{p}{c.name}" + (f" {c.args}" if c.args else ""), c.help(lang))
            for c in COMMANDS
            if c.name not in ("start", "help") and (not c.admin or self.is_admin(message))
        ]
        return self.core.renderer.text(
            self.platform, "help.j2", self._limits(), lang=lang, commands=rows
        )

    async def subscribe(self, message: IncomingMessage, _arg: str = "") -> Replies:
        return await self._subscription(message, subscribe=True)

    async def unsubscribe(self, message: IncomingMessage, _arg: str = "") -> Replies:
        return await self._subscription(message, subscribe=False)

    async def _subscription(self, message: IncomingMessage, *, subscribe: bool) -> Replies:
        lang = language_of(message)
        if message.chat_kind is not ChatKind.PRIVATE:
            allowed = self.chat_admin is not None and await self.chat_admin(
                message.chat_id, message.user_id
            )
            if not allowed:
                return self._reply(message, say("group_admin_only", lang))
        store = self.core.store
        if subscribe:
            kind = (
                TargetKind.SUBSCRIBER if message.chat_kind is ChatKind.PRIVATE else TargetKind.GROUP
            )
            added = store.add_subscriber(
                self.platform, message.chat_id, kind, name=message.user_name, language=lang
            )
            key = "subscribed" if added else "already_subscribed"
            return self._reply(message, say(key, lang, prefix=self.rules.command_prefix))
        removed = store.deactivate_subscriber(self.platform, message.chat_id, "unsubscribed")
        return self._reply(message, say("unsubscribed" if removed else "not_subscribed", lang))

    async def latest(self, message: IncomingMessage, _arg: str = "") -> Replies:
        return self._latest(message)

    def _latest(self, message: IncomingMessage) -> Replies:
        date = latest_day(self.core.store, self.core.today())
        brief = assemble_brief(self.core.store, date, self.core.settings.brief) if date else None
        if brief is None:
            return self._reply(message, say("no_brief", language_of(message)))
        return self.core.renderer.brief(brief, self.platform, self._limits())

    async def search(self, message: IncomingMessage, query: str) -> Replies:
        lang = language_of(message)
        query = query.strip()
        if self.cooldowns.cooling(message, record=False) and not self.is_admin(message):
            return []
        max_length = self.core.settings.search.max_query_length
        if not query or len(query) > max_length or not query_terms(query, max_length=max_length):
            # hints have a cooldown of their own: limited, yet never in the way of the answer
            if self.cooldowns.cooling(message, scope="hint"):
                return []
            if not query:
                prefix = (
                    self.rules.query_prefixes[0]
                    if self.rules.query_prefixes
                    else f"{self.rules.command_prefix}search "
                )
                return self._reply(message, say("empty_query", lang, example=f"{prefix}芯片"))
            return self._reply(message, say("bad_query", lang))
        self.cooldowns.cooling(message)  # records this answer's time
        results, total = await asyncio.to_thread(
            search_page,
            self.core.store,
            query,
            limit=self.core.settings.search.limit,
            max_length=max_length,
        )
        replies = self.core.renderer.search_results(
            query, [r.item for r in results], self.platform, self._limits(), total=total
        )
        return self._with_mention(message, replies)

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
                return self._reply(message, say("bad_date", language_of(message)))
        return date, audience

    async def stats(self, message: IncomingMessage, _arg: str = "") -> Replies:
        return self.core.renderer.text(
            self.platform,
            "stats.j2",
            self._limits(),
            lang=language_of(message),
            stats=self.stats_counts(),
        )

    async def preview(self, message: IncomingMessage, arg: str) -> Replies:
        parsed = self._admin_args(message, arg)
        if isinstance(parsed, list):
            return parsed
        date = parsed[0] or latest_day(self.core.store, self.core.today())
        brief = assemble_brief(self.core.store, date, self.core.settings.brief) if date else None
        if brief is None:
            return self._reply(message, say("no_brief", language_of(message)))
        return self.core.renderer.brief(brief, self.platform, self._limits())

    async def send(self, message: IncomingMessage, arg: str) -> Replies:
        lang = language_of(message)
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
        lang = language_of(message)
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
        return [OutgoingMessage(first.text, first.parse_mode, mentions), *rest]


async def _search_command(commands: Commands, message: IncomingMessage, arg: str) -> Replies:
    return await commands.search(message, arg)


COMMANDS: tuple[ChatCommand, ...] = (
    ChatCommand("start", False, "开始使用", "Start", handler=Commands.help),
    ChatCommand("help", False, "帮助", "Help", handler=Commands.help),
    ChatCommand(
        "subscribe",
        False,
        "订阅每日AI简报",
        "Subscribe to the daily AI brief",
        handler=Commands.subscribe,
    ),
    ChatCommand("unsubscribe", False, "退订", "Unsubscribe", handler=Commands.unsubscribe),
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
    ChatCommand("stats", True, "统计", "Statistics", handler=Commands.stats),
)


def menu(commands: Sequence[ChatCommand] = COMMANDS) -> list[tuple[str, str, str, bool]]:
    """(name, Chinese, English, admin-only) of each command, for a platform's command menu."""
    return [(c.name, c.help_zh, c.help_en, c.admin) for c in commands]
