"""Screenshots of the console for the README, taken by the browser tests' Chromium from a real run.

    python -m tests.browser.screenshots docs/images      (or: make screenshots)

Runs the demo stream through the local pipeline, serves the console beside it as `tweetlens up
--console` does, and saves one PNG per page as console-<page>.png.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from urllib.parse import urljoin

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.browser_kit import (
    chromium,
    full_page_screenshot,
    image_loaded,
    missing,
    wait_for,
)
from tweetlens.console import CloudActivity, ConsoleData, ConsoleServer, create_app
from tweetlens.demo import deployed, run_producer
from tweetlens.pipeline import LocalPipeline

SETTLE_SECONDS = 120.0


def _page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    for image in driver.find_elements(By.TAG_NAME, "img"):
        wait_for(driver, lambda d, i=image: image_loaded(d, i), f"an image of {url} did not load")


def take(target: Path) -> list[Path]:
    with LocalPipeline() as pipeline:
        run_producer(pipeline)
        status = pipeline.cloud.wait_until_idle(timeout=SETTLE_SECONDS)
        if not status.idle:
            raise SystemExit(f"the pipeline did not settle: {status}")
        data = ConsoleData.fixed(deployed(pipeline), CloudActivity(pipeline.cloud))
        with ConsoleServer(create_app(data), port=0) as server, chromium() as driver:
            shots: list[Path] = []

            def shot(name: str, path: str, max_height: int = 1600) -> None:
                _page(driver, urljoin(server.url, path))
                target_file = target / f"console-{name}.png"
                shots.append(full_page_screenshot(driver, target_file, max_height=max_height))

            shot("overview", "/", max_height=700)
            shot("results", "/results", max_height=1200)
            shot("results-cat", "/results?label=Cat&min_confidence=80", max_height=800)
            shot("executions", "/executions")
            _page(driver, urljoin(server.url, "/executions?status=FAILED"))
            failed = driver.find_element(By.CSS_SELECTOR, "#executions-table tbody a")
            shot("trace", str(failed.get_attribute("href")), max_height=1500)
            shot("dead-letters", "/dead-letters", max_height=1000)
            return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="folder for the PNG files")
    problem = missing()
    if problem is not None:
        raise SystemExit(problem)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("localcloud").setLevel(logging.WARNING)
    for path in take(parser.parse_args().target):
        print(path)


if __name__ == "__main__":
    main()
