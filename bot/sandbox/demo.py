"""``briefbot demo``: the whole service against the loopback Telegram, WeChat and WeCom
robot servers.

No accounts needed: it starts the sandboxes on 127.0.0.1, loads the sample content into a
throwaway SQLite store, lets simulated people subscribe and search, sends the day's brief
and prints what each side saw.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TextIO

from bot.brief import assemble_brief
from bot.config import DeliverySettings, RenderSettings, Secret, Settings, StoreSettings
from bot.core import build_core
from bot.errors import BriefbotError
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.robot import RobotEntry
from bot.platforms.telegram import TOKEN_ENV as TELEGRAM_TOKEN
from bot.platforms.telegram import TelegramChannel, TelegramSettings
from bot.platforms.wechat import TOKEN_ENV as WECHAT_TOKEN
from bot.platforms.wechat import WechatGroup, WechatSettings
from bot.platforms.wecom import WecomSettings
from bot.sandbox.telegram_api import TelegramTestServer
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.service import Service, build_service, start_service

TG_EDITOR, TG_XIAOMING, TG_ALICE = 1000, 1001, 1002
TG_CHANNEL, TG_CHANNEL_NAME = -1001234567890, "ai_brief_demo"
WX_EDITOR, WX_BOB = "wxid_editor0001", "wxid_bob0000002"
WX_ROOM, WX_TOPIC = "20001000001@chatroom", "AI简报交流群"
WECOM_ROBOT, WECOM_GROUP = "ai-team", "AI 研究组"
WAIT = 15.0  # seconds to wait for an answer before the demo fails


class Transcript:
    """Prints the conversation readably: who said what, and the bot's answers, shortened."""

    def __init__(self, out: TextIO, width: int = 96) -> None:
        self.out = out
        self.width = width

    def heading(self, text: str) -> None:
        print(f"\n━━ {text} ━━", file=self.out)

    def said(self, who: str, text: str) -> None:
        print(f"  {who} ▶ {text}", file=self.out)

    def answer(self, who: str, text: str, *, lines: int = 6) -> None:
        body = [line for line in text.splitlines() if line.strip()]
        shown = body[:lines] + (
            [f"… ({len(body) - lines} more lines)"] if len(body) > lines else []
        )
        for n, line in enumerate(shown):
            prefix = f"  {who} ◀ " if n == 0 else " " * (len(who) + 5)
            room = max(20, self.width - len(prefix))
            print(prefix + textwrap.shorten(line, room, placeholder=" …"), file=self.out)

    def note(self, text: str) -> None:
        print(f"  · {text}", file=self.out)


def wechat_available() -> str | None:
    """None if the WeChat side can run here, else why not."""
    if sys.version_info >= (3, 13):
        return "wechaty 0.10.7 needs Python 3.11 or 3.12"
    if importlib.util.find_spec("wechaty") is None or importlib.util.find_spec("grpclib") is None:
        return "the wechat extra is not installed (pip install 'briefbot[wechat]')"
    return None


@asynccontextmanager
async def sandboxes(
    with_wechat: bool,
) -> AsyncIterator[tuple[TelegramTestServer, object | None, WecomRobotServer]]:
    telegram = TelegramTestServer()
    telegram.add_user(TG_EDITOR, "编辑部", username="editor")
    telegram.add_user(TG_XIAOMING, "小明", username="xiaoming")
    telegram.add_user(TG_ALICE, "Alice", language_code="en")
    telegram.add_chat(TG_CHANNEL, "channel", title="AI 简报", username=TG_CHANNEL_NAME)
    wecom = WecomRobotServer()
    wecom.add_robot(WECOM_ROBOT)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(telegram)
        await stack.enter_async_context(wecom)
        wechat = None
        if with_wechat:
            from bot.sandbox.wechat_puppet import WechatPuppetServer

            wechat = WechatPuppetServer()
            wechat.add_contact(WX_EDITOR, "编辑部")
            wechat.add_contact(WX_BOB, "Bob")
            wechat.add_room(WX_ROOM, WX_TOPIC, [WX_EDITOR, WX_BOB])
            await stack.enter_async_context(wechat)
        yield telegram, wechat, wecom


def demo_settings(
    telegram: TelegramTestServer,
    wechat: object | None,
    folder: Path,
    wecom: WecomRobotServer | None = None,
) -> Settings:
    robots = (RobotEntry(WECOM_ROBOT),) if wecom is not None else ()
    return Settings(
        store=StoreSettings(url=f"sqlite:///{folder / 'demo.db'}", data_dir=str(folder)),
        render=RenderSettings(),
        delivery=DeliverySettings(backoff_base=0.2),
        platforms={
            "telegram": TelegramSettings(
                api_base_url=telegram.base_url,
                admins=(TG_EDITOR,),
                channels=(TelegramChannel(f"@{TG_CHANNEL_NAME}"),),
            ),
            "wechat": WechatSettings(
                endpoint=getattr(wechat, "endpoint", ""),
                admins=(WX_EDITOR,),
                groups=(WechatGroup(topic=WX_TOPIC),),
                global_rate=5.0,  # the demo is quick; real accounts want the default slow pace
                min_interval=0.3,
                jitter=0.2,
            ),
            # the demo is quick; a real robot takes 20 messages a minute (the default)
            "wecom": WecomSettings(robots=robots, per_minute=600),
        },
        secrets={
            TELEGRAM_TOKEN: Secret(telegram.token),
            WECHAT_TOKEN: Secret(getattr(wechat, "token", "")),
            **(
                {"BRIEFBOT_WECOM_WEBHOOK_AI_TEAM": Secret(wecom.robot(WECOM_ROBOT).webhook_url)}
                if wecom is not None
                else {}
            ),
        },
    )


async def _telegram_says(
    telegram: TelegramTestServer,
    log: Transcript,
    chat: int,
    user: int,
    who: str,
    text: str,
    replies: int = 1,
) -> list[str]:
    before = len(telegram.messages_to(chat))
    log.said(who, text)
    telegram.send_user_message(chat, user, text)
    got = await telegram.wait_for_messages(chat, before + replies, timeout=WAIT)
    answers = [m.text for m in got[before:]]
    for answer in answers:
        log.answer("bot", answer)
    return answers


async def _wechat_says(
    wechat: object,
    log: Transcript,
    who_id: str,
    who: str,
    text: str,
    *,
    replies: int = 1,
    mention_bot: bool = True,
) -> None:
    from bot.sandbox.wechat_puppet import WechatPuppetServer

    assert isinstance(wechat, WechatPuppetServer)
    before = len(wechat.texts_to(WX_ROOM))
    mention = wechat.mention(room_id=WX_ROOM) if mention_bot else ""
    log.said(f"{who}@{WX_TOPIC}", f"{mention}{text}".replace("\u2005", " "))
    await wechat.inject_room_message(
        WX_ROOM, who_id, f"{mention}{text}", mention_ids=[wechat.self_id] if mention_bot else []
    )
    got = await wechat.wait_for_texts(WX_ROOM, before + replies, timeout=WAIT * 2)
    for sent in got[before:]:
        who_mentioned = ", ".join(sent.mention_ids) or "-"
        log.answer(f"bot (mentions {who_mentioned})", sent.text)


async def run_demo(out: TextIO = sys.stdout) -> int:
    """Run the scripted demo; returns the exit code (0 when every step got its answer)."""
    log = Transcript(out)
    skip_wechat = wechat_available()
    with tempfile.TemporaryDirectory(prefix="briefbot-demo-") as tmp:
        folder = Path(tmp)
        os.environ.setdefault("CACHE_DIR", str(folder / "wechaty"))
        async with sandboxes(with_wechat=skip_wechat is None) as (telegram, wechat, wecom):
            settings = demo_settings(telegram, wechat, folder, wecom)
            core = build_core(settings)
            service: Service | None = None
            try:
                report = import_paths(core.store, [SAMPLES_DIR])
                total = report.total()
                date = core.store.latest_date()
                assert date is not None
                brief = assemble_brief(core.store, date, settings.brief)
                assert brief is not None
                log.heading(
                    "briefbot demo: loopback Telegram Bot API, WeChat puppet service and WeCom "
                    "group robot on 127.0.0.1"
                )
                log.note(f"sample content: {total.added} items over {len(core.store.dates())} days")
                log.note(f"today's brief: {brief.title} ({len(brief.items)} items)")
                if skip_wechat:
                    log.note(f"WeChat part skipped: {skip_wechat}")
                service = build_service(core)
                await start_service(service, schedule=False)
                await _script(service, telegram, wechat, log, date, wecom)
            except (BriefbotError, TimeoutError) as exc:
                log.heading("demo failed")
                print(f"  {exc}", file=out)
                return 1
            finally:
                if service is not None:
                    await service.stop()
                core.store.close()
    return 0


async def _script(
    service: Service,
    telegram: TelegramTestServer,
    wechat: object | None,
    log: Transcript,
    date: object,
    wecom: WecomRobotServer,
) -> None:
    log.heading("Telegram: 小明 subscribes and searches")
    await _telegram_says(telegram, log, TG_XIAOMING, TG_XIAOMING, "小明", "/start")
    await _telegram_says(telegram, log, TG_XIAOMING, TG_XIAOMING, "小明", "/subscribe")
    await _telegram_says(telegram, log, TG_XIAOMING, TG_XIAOMING, "小明", "芯片")
    log.heading("Telegram: Alice (English) searches; a stranger tries an admin command")
    await _telegram_says(telegram, log, TG_ALICE, TG_ALICE, "Alice", "/search transformer")
    await _telegram_says(telegram, log, TG_ALICE, TG_ALICE, "Alice", "/send")
    if wechat is not None:
        log.heading(f"WeChat: Bob asks a keyword in 「{WX_TOPIC}」")
        await _wechat_says(wechat, log, WX_BOB, "Bob", "量化")
    log.heading("Telegram: the editor (an admin, by user id) sends today's brief on Telegram")
    await _telegram_says(telegram, log, TG_EDITOR, TG_EDITOR, "编辑部", f"/send {date}")
    # the summary follows once every Telegram chat has been served
    await telegram.wait_for_messages(TG_EDITOR, 2, timeout=WAIT * 2)
    log.answer("bot", telegram.messages_to(TG_EDITOR)[-1].text)
    if wechat is not None:
        log.heading("WeChat: the editor (an admin, by contact id) sends it to the groups")
        await _wechat_says(wechat, log, WX_EDITOR, "编辑部", "#send", replies=3, mention_bot=False)
    await _robot_script(service, wecom, log, date)
    log.heading("What each side received")
    channel = telegram.messages_to(TG_CHANNEL)
    log.note(f"Telegram channel @{TG_CHANNEL_NAME}: {len(channel)} message(s)")
    if channel:
        log.answer("channel", channel[0].text, lines=8)
    xiaoming = [m for m in telegram.messages_to(TG_XIAOMING) if m.text.startswith("【AI简报")]
    log.note(f"Telegram subscriber 小明: {len(xiaoming)} brief message(s)")
    if wechat is not None:
        from bot.sandbox.wechat_puppet import WechatPuppetServer

        assert isinstance(wechat, WechatPuppetServer)
        group = [t for t in wechat.texts_to(WX_ROOM) if t.text.startswith("【AI简报")]
        log.note(f"WeChat group 「{WX_TOPIC}」: {len(group)} brief message(s), as shown above")
    log.heading("Sending again changes nothing: the ledger knows who has it")
    again = await service.send(date)  # type: ignore[arg-type]
    counts = ", ".join(f"{k} {v}" for k, v in again.summary().items() if v)
    log.note(f"second send: {counts} (already delivered; use --force to resend)")
    if not channel or not xiaoming:
        raise BriefbotError("the brief did not reach every Telegram target")
    if wechat is not None and not group:
        raise BriefbotError("the brief did not reach the WeChat group")


async def _robot_script(
    service: Service, wecom: WecomRobotServer, log: Transcript, date: object
) -> None:
    log.heading(f"WeCom: the group robot posts the brief into 「{WECOM_GROUP}」")
    result = await service.send(date, platform="wecom")  # type: ignore[arg-type]
    received = wecom.messages_to(WECOM_ROBOT)
    sizes = ", ".join(str(len(m.text.encode("utf-8"))) for m in received)
    log.note(
        f"{len(received)} markdown message(s) of {sizes} bytes (WeCom's limit: 4096 bytes each, "
        "20 messages a minute per robot)"
    )
    if received:
        log.answer("robot", received[0].text, lines=6)
    if not received or result.summary().get("sent") != 1:
        raise BriefbotError("the brief did not reach the WeCom group")
