"""The archive in a real browser (headless Chromium on a 375px-wide phone screen): a reader
goes from the home page to a brief to an item, searches in Chinese and in traditional
characters, and hostile item text stays text."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from bot.config import Settings, SiteSettings
from bot.domain import Item, Link
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.site import build_site
from bot.site.server import SiteServer
from bot.store import Store
from tests.browser import WAIT, assert_fits_the_phone, phone_browser, script, wait

pytestmark = pytest.mark.integration


NEWEST = "2026-11-27"
NEWEST_HEADLINES = (
    "开源推理引擎 FlowServe 支持 FP4 量化推理",
    "芯片出口新规落地，厂商调整产品线",
    "大模型创业公司推出按效果付费的客服方案",
)
HOSTILE_DAY = dt.date(2026, 11, 19)
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">恶意标题 xss-probe <b>粗体</b>'
HOSTILE = Item(
    date=HOSTILE_DAY,
    title=HOSTILE_TITLE,
    summary=(
        "<script>window.__pwned=2</script>摘要里的标签 xss-probe <img src=y onerror=window.__pwned=4> "
        "https://example.com/" + "a-very-long-path-segment-without-any-break" * 6
    ),
    links=(
        Link("原文", "javascript:window.__pwned=3"),
        Link("长链接", "https://example.com/" + "x" * 300),
    ),
    tags=("<b>tag</b>",),
    position=0,
)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    store = Store.open(f"sqlite:///{root / 'briefbot.db'}")
    try:
        import_paths(store, [SAMPLES_DIR])
        store.upsert_items([HOSTILE])
        settings = Settings(site=SiteSettings(base_url="http://archive.example/"))
        build_site(store, settings, root / "site", today=dt.date(2026, 11, 28))
    finally:
        store.close()
    return root / "site"


@pytest.fixture(scope="module")
def site_url(site_dir: Path) -> Iterator[str]:
    """The built site served by SiteServer, its event loop in a thread of its own."""
    loop = asyncio.new_event_loop()
    server = SiteServer(site_dir, "127.0.0.1", 0)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            return
        finally:
            started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="site-server", daemon=True)
    thread.start()
    assert started.wait(WAIT), "the site server did not start"
    if failure:
        loop.close()
        raise failure[0]
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with phone_browser() as driver:
        yield driver


def assert_not_pwned(driver: WebDriver) -> None:
    assert script(driver, "return window.__pwned === undefined;"), driver.current_url


def result_links(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#results li .result-title a")


def search_for(driver: WebDriver, query: str) -> list[str]:
    """Type ``query`` into the search field; the hrefs of the results that appear."""
    field = driver.find_element(By.ID, "q")
    field.clear()
    field.send_keys(query)
    wait(driver).until(
        lambda d: d.find_element(By.ID, "results").get_attribute("data-query") == query
    )
    return [link.get_attribute("href") or "" for link in result_links(driver)]


def test_a_reader_goes_from_the_home_page_to_a_brief_to_an_item(
    browser: WebDriver, site_url: str
) -> None:
    browser.get(site_url)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert "往期简报" in browser.find_element(By.TAG_NAME, "h1").text
    assert_fits_the_phone(browser)

    browser.find_element(By.CSS_SELECTOR, f'a[href="briefs/{NEWEST}.html"]').click()
    wait(browser).until(lambda d: d.current_url.endswith(f"/briefs/{NEWEST}.html"))
    heading = browser.find_element(By.TAG_NAME, "h1")
    assert heading.text.startswith("【AI简报20261127】")
    visible = [
        h.text for h in browser.find_elements(By.CSS_SELECTOR, ".item h3") if h.is_displayed()
    ]
    for headline in NEWEST_HEADLINES:
        assert any(headline in text for text in visible), headline
    assert_fits_the_phone(browser)

    [chip] = [
        link
        for link in browser.find_elements(By.CSS_SELECTOR, ".item h3 a")
        if "芯片出口新规落地" in link.text
    ]
    permalink = chip.get_attribute("href") or ""
    assert f"/items/{NEWEST}-" in permalink
    chip.click()
    wait(browser).until(lambda d: d.current_url == permalink)
    assert browser.find_element(By.TAG_NAME, "h1").text == "芯片出口新规落地，厂商调整产品线"
    assert_fits_the_phone(browser)

    # back to the brief, at the item's anchor
    browser.find_element(By.CSS_SELECTOR, ".pager a").click()
    anchor = permalink.rsplit("-", 1)[1].removesuffix(".html")
    wait(browser).until(lambda d: d.current_url.endswith(f"#item-{anchor}"))
    assert browser.find_element(By.ID, f"item-{anchor}").is_displayed()


def test_search_finds_chinese_words_and_their_traditional_forms(
    browser: WebDriver, site_url: str
) -> None:
    browser.get(site_url + "search.html")
    chip = search_for(browser, "芯片")
    assert len(chip) >= 5
    titles = [link.text for link in result_links(browser)]
    assert "芯片出口新规落地，厂商调整产品线" in titles
    marks = browser.find_elements(By.CSS_SELECTOR, "#results mark")
    assert marks and all(mark.text == "芯片" for mark in marks)
    assert all("/items/" in href for href in chip)
    assert_fits_the_phone(browser)
    # the query is in the address, so the results can be shared
    wait(browser).until(lambda d: f"q={quote('芯片')}" in d.current_url)

    simplified = search_for(browser, "开源")
    assert simplified
    assert search_for(browser, "開源") == simplified  # traditional characters fold
    assert search_for(browser, "機器人") == search_for(browser, "机器人") != []
    assert search_for(browser, "ＦＰ４") == search_for(browser, "fp4") != []  # full width, case

    # a shared link opens with its results
    browser.get(site_url + "search.html?q=" + quote("開源"))
    wait(browser).until(lambda d: len(result_links(d)) == len(simplified))
    assert browser.find_element(By.ID, "q").get_attribute("value") == "開源"

    result_links(browser)[0].click()
    wait(browser).until(lambda d: "/items/" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text


def test_search_shows_item_text_as_text(browser: WebDriver, site_url: str) -> None:
    browser.get(site_url + "search.html")
    found = search_for(browser, "xss-probe")
    assert len(found) == 1
    result = browser.find_element(By.CSS_SELECTOR, "#results li")
    assert HOSTILE_TITLE in result.text
    assert "</script>摘要里的标签" in result.text  # the snippet, as text
    assert browser.find_elements(By.CSS_SELECTOR, "#results img, #results script, #results b") == []
    assert_not_pwned(browser)
    assert_fits_the_phone(browser)

    # the item's own pages: text, not markup; the javascript: link is not a link
    browser.get(found[0])
    assert browser.find_element(By.TAG_NAME, "h1").text == HOSTILE_TITLE
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script, main b") == []
    assert not browser.find_elements(By.CSS_SELECTOR, 'a[href^="javascript"]')
    assert_not_pwned(browser)
    assert_fits_the_phone(browser)  # the long URLs wrap
    browser.get(site_url + f"briefs/{HOSTILE_DAY.isoformat()}.html")
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script") == []
    assert_not_pwned(browser)
    assert_fits_the_phone(browser)


def test_search_works_offline_from_the_folder(browser: WebDriver, site_dir: Path) -> None:
    browser.get((site_dir.resolve() / "search.html").as_uri() + "?q=" + quote("芯片"))
    wait(browser).until(lambda d: len(result_links(d)) >= 5)
    assert_fits_the_phone(browser)
    # no server here, so no Content-Security-Policy either: text must stay text on its own
    assert len(search_for(browser, "xss-probe")) == 1
    assert HOSTILE_TITLE in browser.find_element(By.CSS_SELECTOR, "#results li").text
    assert browser.find_elements(By.CSS_SELECTOR, "#results img, #results b") == []
    assert_not_pwned(browser)
