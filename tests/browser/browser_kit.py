"""Headless Debian Chromium driven by selenium: starting it, and waiting on what a page shows."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

# Debian's packages (`make browser`); the Makefile's CHROMIUM/CHROMEDRIVER may point elsewhere.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
# Flags that work in a container as root with no display, GPU or network beyond loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_SECONDS = 30.0


def missing() -> str | None:
    """Why the browser cannot start here, or None (`make browser` installs what is missing)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return (
                f"{path} is missing: run `make browser` (apt-get install chromium chromium-driver)"
            )
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its own profile, closed and removed afterwards."""
    profile = tempfile.mkdtemp(prefix="tweetlens-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    # The driver path is given: selenium never looks for (or downloads) one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for[T](
    driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], message: str
) -> T:
    """What ``condition`` returns once it is truthy; a bounded wait, never a hang."""
    result: T = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2).until(
        condition, message=message
    )
    return result


def image_loaded(driver: webdriver.Chrome, element: Any) -> bool:
    """The browser decoded the <img> (a broken image has no natural width)."""
    return bool(
        driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;", element
        )
    )


def full_page_screenshot(
    driver: webdriver.Chrome, path: Path, width: int = 1280, max_height: int = 4000
) -> Path:
    """The whole page (up to ``max_height``): the window is made as tall as the page first."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight;"))
    driver.set_window_size(width, min(max(height, 600), max_height))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
