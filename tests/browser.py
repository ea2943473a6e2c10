"""Headless Chromium for the browser tests (the archive site, the console): Debian's
chromium and chromium-driver, a phone-sized viewport, and helpers that wait instead of sleep.
Tests skip with the reason when Chromium is not installed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE_WIDTH = 375
WAIT = 10  # seconds: an upper bound for WebDriverWait, never a sleep


@contextmanager
def phone_browser() -> Iterator[WebDriver]:
    """A headless Chromium with a 375px-wide phone screen; skips when none is installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not (
        shutil.which("chromium") and shutil.which("chromedriver")
    ):
        pytest.skip("Chromium/chromedriver not installed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={PHONE_WIDTH},812",
    ):
        options.add_argument(argument)
    # a desktop window is at least 500px wide: emulate the phone's screen for a 375px viewport
    options.add_experimental_option(
        "mobileEmulation",
        {"deviceMetrics": {"width": PHONE_WIDTH, "height": 812, "pixelRatio": 2.0}},
    )
    driver_path = str(CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver"))
    try:
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except WebDriverException as exc:
        pytest.fail(f"Chromium is installed but did not start: {exc.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    # a page's script may replace an element between finding it and reading it: look again
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def script(driver: WebDriver, source: str) -> Any:
    """Run ``source`` in the page (selenium leaves execute_script unannotated)."""
    return driver.execute_script(source)  # type: ignore[no-untyped-call]


def assert_fits_the_phone(driver: WebDriver) -> None:
    widths = script(driver, "return [window.innerWidth, document.documentElement.scrollWidth];")
    inner, scroll = widths
    assert inner == PHONE_WIDTH, f"the page has no phone viewport: {widths}"
    assert scroll <= inner, (
        f"the page scrolls sideways on a phone: {widths} at {driver.current_url}"
    )
