"""The HTML report of `tweetlens demo` (out/report.html) as a browser shows it.

The demo runs on a small stream (tests/integration's) to stay quick; the report is written by
the same code as `make demo`'s, then opened from disk like a user would open it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.browser_kit import image_loaded, wait_for
from tests.integration.test_demo import small_stream
from tweetlens import report
from tweetlens.demo import run_demo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_demo(recording=small_stream, timeout=60.0)
    assert result.accounting.problems() == []
    return report.write(result, tmp_path_factory.mktemp("out") / "report.html")


def test_the_report_shows_the_summary_thumbnails_and_traces(
    browser: webdriver.Chrome, report_path: Path
) -> None:
    # WHEN the report is opened from disk
    browser.get(report_path.as_uri())

    # THEN its summary accounts for every message per route, nothing lost
    assert browser.title == "tweetlens demo"
    rows = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, "table tr")
    ]
    summary = {row[0]: row for row in rows if row and row[0] in {"cats", "dogs"}}
    assert (summary["cats"][1], summary["dogs"][1]) == ("3", "2")
    assert summary["cats"][5] == summary["dogs"][5] == "0"
    # AND both classified photos show as thumbnails the browser decoded (they are inline)
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".card img")
    assert len(thumbs) == 2
    for thumb in thumbs:
        wait_for(browser, lambda b, t=thumb: image_loaded(b, t), "a thumbnail did not load")
    # AND every execution has its drawn trace, shown when opened, the failure in red
    traces = browser.find_elements(By.CSS_SELECTOR, "details")
    assert len(traces) == 3
    failed = next(
        t for t in traces if t.find_element(By.TAG_NAME, "summary").text.startswith("FAILED")
    )
    failed.find_element(By.TAG_NAME, "summary").click()
    drawing = failed.find_element(By.TAG_NAME, "svg")
    assert drawing.is_displayed()
    assert drawing.size["width"] > 400
    node = failed.find_element(By.CSS_SELECTOR, "g#state-fetch-image")
    assert "failed" in node.get_attribute("class").split()
