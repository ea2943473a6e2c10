"""What people and admins can ask the bot, answered as platform-neutral replies."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.app import Core
from bot.brief import assemble_brief
from bot.dispatch import Audience, SendResult
from bot.domain import ChatKind, IncomingMessage, OutgoingMessage, TargetKind
from bot.errors import BriefbotError
from bot.logs import scrub
from bot.search import query_terms, search_page
from bot.text import log_id

log = logging.getLogger("briefbot.commands")

SendBrief = Callable[[str, dt.date, Audience], Awaitable[SendResult]]
ChatAdminCheck = Callable[[str, str], Awaitable[bool]]
Notify = Callable[[str, OutgoingMessage], Awaitable[object]]

# (Chinese, English) texts of the short replies; long ones are templates.
TEXTS: dict[str, tuple[str, str]] = {
    "subscribed": (
        "已订阅每日AI简报。发送 /unsubscribe 退订。",
        "Subscribed to the daily AI brief. /unsubscribe to stop.",
    ),
    "already_subscribed": ("你已经订阅了。", "You are already subscribed."),
    "unsubscribed": ("已退订。", "Unsubscribed."),
    "not_subscribed": ("你还没有订阅。", "You are not subscribed."),
    "group_admin_only": (
        "只有群管理员可以为本群订阅或退订。",
        "Only a chat administrator can (un)subscribe this chat.",
    ),
    "not_admin": ("此命令仅限管理员使用。", "This command is for admins only."),
    "no_brief": ("还没有可发送的简报。", "There is no brief yet."),
    "empty_query": ("请在关键词前加上命令，例如：{example}", "Send a keyword, e.g. {example}"),
    "bad_query": (
        "关键词太长或无法识别，请换一个词试试。",
        "That query is too long or has no words; try one keyword.",
    ),
    "bad_date": ("日期格式应为 YYYY-MM-DD。", "Dates look like YYYY-MM-DD."),
    "sending": ("开始发送 {date} 的简报…", "Sending the brief of {date}…"),
    "sent": (
        "{date} 简报发送完成：成功 {sent}，失败 {failed}，跳过 {skipped}，待发 {pending}。",
        "Brief of {date} done: sent {sent}, failed {failed}, skipped {skipped}, pending {pending}.",
    ),
    "unresolved": ("未找到的群：{names}", "Groups not found: {names}"),
    "send_failed": ("发送失败：{error}", "Send failed: {error}"),
}


def say(key: str, lang: str, **values: object) -> str:
    zh, en = TEXTS[key]
    return (en if lang == "en" else zh).format(**values)


def language_of(message: IncomingMessage) -> str:
    return "en" if (message.language or "").lower().startswith("en") else "zh"


@dataclass(frozen=True)
class PlatformRules:
    """How one platform's chats address the bot."""

    command_prefix: str  # "/" on Telegram, "#" on WeChat
    admins: frozenset[str]
    query_prefixes: tuple[str, ...] = ()
    hot_keywords: tuple[str, ...] = ()
    user_cooldown: float = 0.0
    group_cooldown: float = 0.0
    search_in_private: bool = True


ADMIN_COMMANDS = ("send", "preview", "stats")
PUBLIC_COMMANDS = ("start", "help", "subscribe", "unsubscribe", "latest", "search")


class Commands:
    """The chat handler of one platform: parse, authorise, answer."""

    def __init__(
        self,
        core: Core,
        platform: str,
        rules: PlatformRules,
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
        self._clock = clock
        self._last_answer: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- entry point -----------------------------------------------------------------------

    async def __call__(self, message: IncomingMessage) -> list[OutgoingMessage]:
        text = message.text.strip()
        command, argument = self._split_command(text)
        if command is not None:
            if command != "search" and self._flooding(message):
                return []
            return await self._command(message, command, argument)
        if text in self.rules.hot_keywords:
            if self._flooding(message):
                return []
            return self._with_mention(message, self._latest(message))
        if message.chat_kind is ChatKind.PRIVATE and self.rules.search_in_private:
            return await self._search(message, text)
        if message.mentions_bot:
            return await self._search(message, text)
        for prefix in self.rules.query_prefixes:
            if text.startswith(prefix):
                return await self._search(message, text[len(prefix) :])
        return []  # chatter in a group is not for us

    def _split_command(self, text: str) -> tuple[str | None, str]:
        prefix = self.rules.command_prefix
        if not text.startswith(prefix):
            return None, ""
        head, _, rest = text[len(prefix) :].partition(" ")
        name = head.split("@", 1)[0].lower()  # "/search@briefbot" in Telegram groups
        if name in ADMIN_COMMANDS or name in PUBLIC_COMMANDS:
            return name, rest.strip()
        return None, ""

    async def _command(
        self, message: IncomingMessage, name: str, arg: str
    ) -> list[OutgoingMessage]:
        lang = language_of(message)
        if name in ADMIN_COMMANDS:
            if message.user_id not in self.rules.admins:
                log.warning(
                    "refused admin command platform=%s command=%s user=%s chat=%s",
                    self.platform,
                    name,
                    log_id(self.platform, message.user_id),
                    log_id(self.platform, message.chat_id),
                )
                return self._reply(message, say("not_admin", lang))
            return await self._admin(message, name, arg)
        if name in ("start", "help"):
            return self.core.renderer.text(
                self.platform,
                "help.j2",
                self.core.limits(self.platform),
                lang=lang,
                commands=self._help_commands(message),
            )
        if name == "subscribe":
            return await self._subscribe(message, subscribe=True)
        if name == "unsubscribe":
            return await self._subscribe(message, subscribe=False)
        if name == "latest":
            return self._latest(message)
        return await self._search(message, arg)

    def _help_commands(self, message: IncomingMessage) -> list[tuple[str, str]]:
        p = self.rules.command_prefix
        zh = language_of(message) == "zh"
        rows = [
            (f"{p}subscribe", "订阅每日简报" if zh else "get the daily brief"),
            (f"{p}unsubscribe", "退订" if zh else "stop it"),
            (f"{p}latest", "最新一期简报" if zh else "the latest brief"),
            (f"{p}search 关键词", "搜索简报内容" if zh else "search the briefs"),
        ]
        if message.user_id in self.rules.admins:
            rows += [
                (
                    f"{p}send [YYYY-MM-DD] [all|channels|subscribers]",
                    "发送简报" if zh else "send a brief",
                ),
                (f"{p}preview [YYYY-MM-DD]", "预览" if zh else "preview"),
                (f"{p}stats", "统计" if zh else "statistics"),
            ]
        return rows

    # -- public commands -------------------------------------------------------------------

    async def _subscribe(
        self, message: IncomingMessage, *, subscribe: bool
    ) -> list[OutgoingMessage]:
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
            return self._reply(message, say("subscribed" if added else "already_subscribed", lang))
        removed = store.deactivate_subscriber(self.platform, message.chat_id, "unsubscribed")
        return self._reply(message, say("unsubscribed" if removed else "not_subscribed", lang))

    def _latest(self, message: IncomingMessage) -> list[OutgoingMessage]:
        date = (
            self.core.store.latest_date(on_or_before=self.core.today())
            or self.core.store.latest_date()
        )
        brief = assemble_brief(self.core.store, date, self.core.settings.brief) if date else None
        if brief is None:
            return self._reply(message, say("no_brief", language_of(message)))
        return self.core.renderer.brief(brief, self.platform, self.core.limits(self.platform))

    async def _search(self, message: IncomingMessage, query: str) -> list[OutgoingMessage]:
        lang = language_of(message)
        query = query.strip()
        if self._cooling_down(message, record=False):
            return []
        max_length = self.core.settings.search.max_query_length
        if not query or len(query) > max_length or not query_terms(query, max_length=max_length):
            # hints have a cooldown of their own: limited, yet never in the way of the answer
            if self._cooling_down(message, scope="hint"):
                return []
            if not query:
                prefix = self.rules.query_prefixes[0] if self.rules.query_prefixes else "/search "
                return self._reply(message, say("empty_query", lang, example=f"{prefix}芯片"))
            return self._reply(message, say("bad_query", lang))
        self._cooling_down(message)  # records this answer's time
        results, total = search_page(
            self.core.store, query, limit=self.core.settings.search.limit, max_length=max_length
        )
        replies = self.core.renderer.search_results(
            query,
            [r.item for r in results],
            self.platform,
            self.core.limits(self.platform),
            total=total,
        )
        return self._with_mention(message, replies)

    def _flooding(self, message: IncomingMessage) -> bool:
        """The cooldowns apply to every answer, not only searches, in groups and private
        chats alike: each reply counts against the account's daily cap. Admins are exempt."""
        if message.user_id in self.rules.admins:
            return False
        return self._cooling_down(message)

    def _cooling_down(
        self, message: IncomingMessage, *, record: bool = True, scope: str = "answer"
    ) -> bool:
        """Per-person and per-group cooldowns stop a flood of queries (WeChat).

        Only what is recorded starts a cooldown (``record``); hints count in a ``scope`` of
        their own, so following a hint at once is answered.
        """
        now = self._clock()
        keys = [(f"{scope}:user:{message.user_id}", self.rules.user_cooldown)]
        if message.chat_kind is ChatKind.GROUP:
            keys.append((f"{scope}:chat:{message.chat_id}", self.rules.group_cooldown))
        for key, cooldown in keys:
            if cooldown and now - self._last_answer.get(key, -cooldown - 1) < cooldown:
                log.info("cooldown platform=%s scope=%s", self.platform, scope)
                return True
        if record:
            for key, _ in keys:
                self._last_answer[key] = now
        return False

    # -- admin commands --------------------------------------------------------------------

    async def _admin(self, message: IncomingMessage, name: str, arg: str) -> list[OutgoingMessage]:
        lang = language_of(message)
        words = arg.split()
        date: dt.date | None = None
        audience = Audience.ALL
        for word in words:
            if word in {a.value for a in Audience}:
                audience = Audience(word)
                continue
            try:
                date = dt.date.fromisoformat(word)
            except ValueError:
                return self._reply(message, say("bad_date", lang))
        if name == "stats":
            return self.core.renderer.text(
                self.platform,
                "stats.j2",
                self.core.limits(self.platform),
                lang=lang,
                stats=self.stats(),
            )
        date = (
            date
            or self.core.store.latest_date(on_or_before=self.core.today())
            or self.core.store.latest_date()
        )
        brief = assemble_brief(self.core.store, date, self.core.settings.brief) if date else None
        if brief is None or date is None:
            return self._reply(message, say("no_brief", lang))
        if name == "preview":
            return self.core.renderer.brief(brief, self.platform, self.core.limits(self.platform))
        if self.send_brief is None:
            return self._reply(
                message, say("send_failed", lang, error="sending is not available here")
            )
        log.info(
            "admin send platform=%s user=%s date=%s audience=%s",
            self.platform,
            log_id(self.platform, message.user_id),
            date,
            audience,
        )
        task = asyncio.create_task(self._send_and_report(message, date, audience))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return self._reply(message, say("sending", lang, date=date.isoformat()))

    async def _send_and_report(
        self, message: IncomingMessage, date: dt.date, audience: Audience
    ) -> None:
        assert self.send_brief is not None
        lang = language_of(message)
        try:
            result = await self.send_brief(self.platform, date, audience)
            counts = result.summary()
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
            await self.notify(
                message.chat_id, OutgoingMessage(text, mentions=self._mentions(message))
            )

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

    def stats(self) -> dict[str, object]:
        store = self.core.store
        last = store.last_delivery_date(self.platform)
        outcome: dict[str, int] = {}
        if last is not None:
            for row in store.deliveries(last, self.platform):
                outcome[row.status.value] = outcome.get(row.status.value, 0) + 1
        return {
            "platform": self.platform,
            "subscribers": len(store.subscribers(self.platform)),
            "items": store.count_items(),
            "latest_date": (store.latest_date() or "-"),
            "last_delivery_date": last.isoformat() if last else "-",
            "last_delivery": outcome,
        }

    # -- replies ---------------------------------------------------------------------------

    def _mentions(self, message: IncomingMessage) -> tuple[str, ...]:
        return (
            (message.user_id,)
            if message.chat_kind is ChatKind.GROUP and self.platform == "wechat"
            else ()
        )

    def _reply(self, message: IncomingMessage, text: str) -> list[OutgoingMessage]:
        return [OutgoingMessage(text, mentions=self._mentions(message))]

    def _with_mention(
        self, message: IncomingMessage, replies: list[OutgoingMessage]
    ) -> list[OutgoingMessage]:
        mentions = self._mentions(message)
        if not mentions or not replies:
            return replies
        first, *rest = replies
        return [OutgoingMessage(first.text, first.parse_mode, mentions), *rest]
