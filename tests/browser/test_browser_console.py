"""The console in a real browser (headless Chromium) over a running local pipeline.

The module shares one pipeline: the demo stream classified, its five broken photos on the
workflow dead-letter queue. The redrive tests, which change that, come last.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urljoin

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from tests.browser.browser_kit import image_loaded, wait_for

pytestmark = pytest.mark.integration

WORKFLOW_DLQ = "WorkflowDeadLetterQueue"
# The demo stream's classified images, and those the local labeler calls Cat.
CLASSIFIED = 5
CATS = 2


def _open(browser: webdriver.Chrome, base: str, path: str) -> None:
    browser.get(urljoin(base, path))


def _csp_violations(browser: webdriver.Chrome) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def test_the_overview_accounts_for_every_message_and_keeps_itself_fresh(
    browser: webdriver.Chrome, console_url: str
) -> None:
    # GIVEN the settled pipeline / WHEN the overview is opened
    _open(browser, console_url, "/")

    # THEN each route's row shows what was published, and nothing lost
    rows = {
        row.get_attribute("data-route"): [
            cell.text for cell in row.find_elements(By.TAG_NAME, "td")
        ]
        for row in browser.find_elements(By.CSS_SELECTOR, "#overview-table tbody tr")
    }
    assert sorted(rows) == ["cats", "dogs"]
    assert (rows["cats"][1], rows["dogs"][1]) == ("37", "13")
    assert rows["cats"][7] == rows["dogs"][7] == "0"
    assert "ImageNotFound 2" in rows["cats"][6]
    # AND the page's script refreshes the table on its own (a new "updated" time)
    first = browser.find_element(By.CSS_SELECTOR, "#overview time").get_attribute("datetime")
    wait_for(
        browser,
        lambda b: (
            b.find_element(By.CSS_SELECTOR, "#overview time").get_attribute("datetime") != first
        ),
        "the overview table never refreshed",
    )
    assert _csp_violations(browser) == []


def test_the_gallery_shows_thumbnails_served_by_the_console(
    browser: webdriver.Chrome, console_url: str
) -> None:
    # WHEN the results page is opened
    _open(browser, console_url, "/results")

    # THEN every classified image has a thumbnail the browser decoded, from the console itself
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#gallery img.thumb")
    assert len(thumbs) == CLASSIFIED
    for thumb in thumbs:
        wait_for(browser, lambda b, t=thumb: image_loaded(b, t), "a thumbnail did not load")
        assert thumb.get_attribute("src").startswith(urljoin(console_url, "/thumbnails/"))
    # AND each card shows its post's text, hashtags, route and a link to the post
    card = browser.find_element(By.CSS_SELECTOR, "#gallery article.done")
    assert card.find_element(By.CSS_SELECTOR, ".tags").text.startswith("#")
    assert "route " in card.text
    assert (
        card.find_element(By.PARTIAL_LINK_TEXT, "post ")
        .get_attribute("href")
        .startswith("https://x.com/i/web/status/")
    )
    assert _csp_violations(browser) == []


def test_the_label_filter_narrows_the_gallery(browser: webdriver.Chrome, console_url: str) -> None:
    # GIVEN the gallery of every result
    _open(browser, console_url, "/results")
    everything = len(browser.find_elements(By.CSS_SELECTOR, "#gallery article"))

    # WHEN filtered by label Cat with a minimum confidence, through the form
    browser.find_element(By.ID, "label").send_keys("Cat")
    confidence = browser.find_element(By.ID, "min-confidence")
    confidence.clear()
    confidence.send_keys("50")
    browser.find_element(By.ID, "filter").click()
    wait_for(browser, expected_conditions.url_contains("label=Cat"), "the filter was not applied")

    # THEN only the images labelled Cat remain, each with its thumbnail and a Cat label
    cards = browser.find_elements(By.CSS_SELECTOR, "#gallery article")
    assert len(cards) == CATS < everything
    for card in cards:
        assert re.search(r"\bCat \d+%", card.text)
        thumb = card.find_element(By.CSS_SELECTOR, "img.thumb")
        wait_for(browser, lambda b, t=thumb: image_loaded(b, t), "a thumbnail did not load")


def test_a_failed_execution_shows_its_drawn_trace(
    browser: webdriver.Chrome, console_url: str
) -> None:
    # GIVEN the failed executions / WHEN the first one is opened from the list
    _open(browser, console_url, "/executions?status=FAILED")
    rows = browser.find_elements(By.CSS_SELECTOR, "#executions-table tbody tr[data-status]")
    assert len(rows) == 5
    rows[0].find_element(By.TAG_NAME, "a").click()

    # THEN the page names the failing state and its error, and the drawing is shown
    wait_for(browser, lambda b: b.find_elements(By.ID, "failed-state"), "no failing state")
    assert browser.find_element(By.ID, "execution-status").text == "FAILED"
    assert browser.find_element(By.ID, "failed-state").text == "Fetch Image"
    drawing = browser.find_element(By.ID, "trace")
    wait_for(browser, lambda b: image_loaded(b, drawing), "the drawn trace did not load")
    assert int(browser.execute_script("return arguments[0].naturalWidth;", drawing)) > 400
    # AND the drawing is `tweetlens trace`'s: the failing state red, the path taken green
    browser.get(drawing.get_attribute("src"))
    fetch = browser.find_element(By.CSS_SELECTOR, "g#state-fetch-image")
    # (no Catch: the failure ends the execution, the closer dead-letters it)
    classes = set(fetch.get_attribute("class").split())
    assert {"taken", "failed"} <= classes
    assert "caught" not in classes
    claim = browser.find_element(By.CSS_SELECTOR, "g#state-claim-image")
    assert "taken" in claim.get_attribute("class").split()


def _letters(browser: webdriver.Chrome, queue: str) -> list[str]:
    return [
        row.get_attribute("data-message-id")
        for row in browser.find_elements(By.CSS_SELECTOR, f"#queue-{queue} tr[data-message-id]")
    ]


def test_sending_back_all_asks_first(browser: webdriver.Chrome, console_url: str) -> None:
    # GIVEN the dead letters page / WHEN "send back all" is clicked and the question declined
    _open(browser, console_url, "/dead-letters")
    before = _letters(browser, WORKFLOW_DLQ)
    browser.find_element(By.ID, "redrive-everything").click()
    alert = wait_for(browser, expected_conditions.alert_is_present(), "no confirmation asked")
    assert "every dead letter" in alert.text
    alert.dismiss()

    # THEN nothing was sent back
    _open(browser, console_url, "/dead-letters")
    assert browser.find_elements(By.ID, "flashes") == []
    assert sorted(_letters(browser, WORKFLOW_DLQ)) == sorted(before)


def test_a_redrive_moves_a_letter_and_the_page_shows_it(
    browser: webdriver.Chrome, console_url: str
) -> None:
    # GIVEN the five workflow dead letters of the demo stream's broken photos
    _open(browser, console_url, "/dead-letters")
    before = _letters(browser, WORKFLOW_DLQ)
    assert len(before) == 5
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-message-id="{before[0]}"]')
    url = row.find_element(By.CSS_SELECTOR, "td.url code").text

    # WHEN one is sent back with its button
    row.find_element(By.CSS_SELECTOR, "button.redrive-one").click()

    # THEN the page that follows says so, and that letter is gone from the queue
    flash = wait_for(browser, lambda b: b.find_elements(By.ID, "flashes"), "no outcome shown")
    assert flash[0].text == f"{WORKFLOW_DLQ}: 1 message(s) sent back"
    assert before[0] not in _letters(browser, WORKFLOW_DLQ)
    # AND the photo really went round again: it failed once more, and is back as attempt 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _open(browser, console_url, "/dead-letters")
        again = [
            cell.text
            for cell in browser.find_elements(By.CSS_SELECTOR, f"#queue-{WORKFLOW_DLQ} td.url")
            if cell.text.startswith(url)
        ]
        if again:
            assert again == [f"{url} attempt 1"]
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{url} never came back as attempt 1")
    assert len(_letters(browser, WORKFLOW_DLQ)) == 5
    assert json.dumps(_csp_violations(browser)) == "[]"
