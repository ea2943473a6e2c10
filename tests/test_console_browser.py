"""The editors' console in a real browser (headless Chromium on a 375px-wide phone screen): an
editor logs in, opens a day, edits a headline and watches the preview follow as they type,
saves and approves; then, while a send to two WeCom group robots is held in flight at the
loopback robot server, the delivery report fills in by itself (sending → sent)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from bot.broadcast import SendResult
from bot.config import load_settings
from bot.console.auth import add_admin
from bot.console.server import ConsoleServer
from bot.core import Core, build_core
from bot.domain import BriefState
from bot.editorial import status
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.sandbox.telegram_limits import RequestHold
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.service import Service, build_service, start_platforms
from tests.browser import WAIT, assert_fits_the_phone, phone_browser, script, wait

pytestmark = pytest.mark.integration


DAY = dt.date(2026, 11, 27)
D = DAY.isoformat()
ADMIN = "editor"
PASSWORD = "a long console password"
NEW_TITLE = "FlowServe 新版：FP4 推理提速 1.7 倍"
T = TypeVar("T")


class LoopThread:
    """An event loop in a thread of its own: the servers and the service run there while
    the browser is driven from the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Awaitable[T]) -> Future[T]:
        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop)

    def run(self, coroutine: Awaitable[T]) -> T:
        return self.submit(coroutine).result(WAIT)

    def call(self, function: Callable[[], T]) -> T:
        """Run a plain function in the loop's thread (the sandbox's holds are not thread-safe)."""

        async def wrapped() -> T:
            return function()

        return self.run(wrapped())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@dataclass
class Stack:
    loop: LoopThread
    core: Core
    wecom: WecomRobotServer
    service: Service
    console: ConsoleServer

    @property
    def url(self) -> str:
        return self.console.url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The console of a running service that sends to two WeCom group robots (loopback)."""
    root = tmp_path_factory.mktemp("console")
    loop = LoopThread()
    wecom = WecomRobotServer()
    loop.run(wecom.start())
    robots = loop.call(lambda: [wecom.add_robot(name) for name in ("ops", "news")])
    config = root / "briefbot.toml"
    config.write_text(
        f'[store]\ndata_dir = "{root / "data"}"\n'
        "[wecom]\nper_minute = 6000\n"
        '[[wecom.robots]]\nname = "ops"\n[[wecom.robots]]\nname = "news"\n',
        encoding="utf-8",
    )
    settings = load_settings(
        config,
        environ={f"BRIEFBOT_WECOM_WEBHOOK_{r.name.upper()}": r.webhook_url for r in robots},
    )
    core = build_core(settings, database_url=f"sqlite:///{root / 'briefbot.db'}")
    import_paths(core.store, [SAMPLES_DIR])
    add_admin(core.store, ADMIN, PASSWORD)
    service = build_service(core, receive=False)
    console = ConsoleServer(core, host="127.0.0.1", port=0, service=service, secret=b"k" * 40)
    try:
        loop.run(start_platforms(service))
        loop.run(console.start())
        yield Stack(loop, core, wecom, service, console)
    finally:
        loop.run(console.stop())
        loop.run(service.stop(grace=1))
        loop.run(wecom.stop())
        core.store.close()
        loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with phone_browser() as driver:
        yield driver


def log_in(driver: WebDriver, stack: Stack, path: str) -> None:
    """Open ``path``; log in first when the console asks for it."""
    driver.get(stack.url + path.lstrip("/"))
    if "/login" not in driver.current_url:
        return
    assert_fits_the_phone(driver)
    driver.find_element(By.ID, "name").send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(lambda d: d.current_url == stack.url + path.lstrip("/"))


def preview_text(driver: WebDriver) -> str:
    # read in the page in one go: the preview is replaced as the editor types, and an element
    # found first and read after would be stale
    text: str = script(
        driver,
        "return Array.from(document.querySelectorAll('#preview-parts pre'))"
        ".map(p => p.innerText).join('\\n');",
    )
    return text


def flashes(driver: WebDriver) -> str:
    text: str = script(
        driver,
        "return Array.from(document.querySelectorAll('#flashes li'))"
        ".map(f => f.innerText).join(' ');",
    )
    return text


def first_item(driver: WebDriver) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, "ol.items > li.item")


def test_an_editor_edits_a_headline_watches_the_preview_and_approves(
    browser: WebDriver, stack: Stack
) -> None:
    log_in(browser, stack, "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Briefs"
    assert_fits_the_phone(browser)
    browser.find_element(By.CSS_SELECTOR, f'a[href="/day/{D}"]').click()
    wait(browser).until(lambda d: d.current_url.endswith(f"/day/{D}"))
    assert_fits_the_phone(browser)

    # the preview per platform, each message sized in that platform's unit against its limit
    # (the first configured platform is shown first: the service runs WeCom robots only)
    assert "as wecom gets them" in browser.find_element(By.ID, "preview-note").text
    platform = Select(browser.find_element(By.ID, "platform"))
    platform.select_by_value("telegram")
    wait(browser).until(lambda d: "telegram" in d.find_element(By.ID, "preview-note").text)
    header = browser.find_element(By.CSS_SELECTOR, "#preview-parts .part header").text
    assert header.startswith("Part 1/1 · ") and header.endswith("/ 4,096 UTF-16 units")
    platform.select_by_value("wecom")
    wait(browser).until(
        lambda d: "as wecom gets them" in d.find_element(By.ID, "preview-note").text
    )
    header = browser.find_element(By.CSS_SELECTOR, "#preview-parts .part header").text
    assert header.startswith("Part 1/1 · ") and header.endswith("/ 4,096 bytes")
    assert browser.current_url.endswith("?platform=wecom")
    old_title = first_item(browser).find_element(By.CSS_SELECTOR, ".item-title").text
    assert old_title in preview_text(browser)

    # edit the first headline: the preview follows the typing, before anything is saved
    item = first_item(browser)
    item.find_element(By.CSS_SELECTOR, "details.edit > summary").click()
    title = item.find_element(By.CSS_SELECTOR, "input[name=title]")
    wait(browser).until(lambda d: title.is_displayed())
    title.clear()
    title.send_keys(NEW_TITLE)
    wait(browser).until(lambda d: NEW_TITLE in preview_text(d))
    assert browser.find_element(By.ID, "preview").get_attribute("data-draft") == "true"
    assert "unsaved changes" in browser.find_element(By.ID, "preview-note").text
    assert old_title not in preview_text(browser)
    assert stack.core.store.items_on(DAY)[0].title == old_title  # not saved yet
    assert_fits_the_phone(browser)

    item.find_element(By.CSS_SELECTOR, "button.save").click()
    wait(browser).until(lambda d: f"saved: {NEW_TITLE}" in flashes(d))
    assert first_item(browser).find_element(By.CSS_SELECTOR, ".item-title").text == NEW_TITLE
    assert NEW_TITLE in preview_text(browser)  # rendered by the server after the save
    assert browser.find_element(By.ID, "platform").get_attribute("value") == "wecom"
    assert stack.core.store.items_on(DAY)[0].title == NEW_TITLE

    browser.find_element(By.ID, "approve").click()
    wait(browser).until(lambda d: f"approved by console:{ADMIN}" in flashes(d))
    assert browser.find_element(By.CSS_SELECTOR, "#status .badge").text == "approved"
    current = status(stack.core, DAY)
    assert current.state is BriefState.APPROVED and current.approved_by == f"console:{ADMIN}"
    assert_fits_the_phone(browser)


def report_rows(driver: WebDriver) -> dict[str, str]:
    return {
        row.get_attribute("data-target") or "": row.find_element(By.CLASS_NAME, "status").text
        for row in driver.find_elements(By.CSS_SELECTOR, "#deliveries li")
    }


def test_the_delivery_report_follows_a_send_in_flight(browser: WebDriver, stack: Stack) -> None:
    hold: RequestHold = stack.loop.call(lambda: stack.wecom.hold_requests(after=1))
    send: Future[SendResult] = stack.loop.submit(stack.service.send(DAY, platform="wecom"))
    try:
        # one robot got the brief; the other one's request is held inside the server
        stack.loop.run(hold.wait_held(1, timeout=WAIT))
        log_in(browser, stack, f"/day/{D}/deliveries")
        wait(browser).until(lambda d: len(report_rows(d)) == 2)
        rows = report_rows(browser)
        assert sorted(rows.values()) in (["sending", "sent"], ["pending", "sent"]), rows
        assert browser.find_element(By.ID, "report").get_attribute("data-active") == "true"
        assert "Sending" in browser.find_element(By.ID, "live").text
        assert_fits_the_phone(browser)
        [in_flight] = [target for target, state in rows.items() if state != "sent"]
    finally:
        stack.loop.call(hold.release)
    # the page polls the report: the held robot turns to sent without a reload
    wait(browser).until(lambda d: report_rows(d).get(in_flight) == "sent")
    wait(browser).until(
        lambda d: d.find_element(By.ID, "report").get_attribute("data-active") == "false"
    )
    assert set(report_rows(browser).values()) == {"sent"}
    counts = browser.find_element(By.ID, "delivery-counts").text
    assert counts == "sent 2"
    result = send.result(WAIT)
    assert result.summary()["sent"] == 2
    assert len(stack.wecom.messages_to("ops")) == len(stack.wecom.messages_to("news")) == 1
    assert_fits_the_phone(browser)
