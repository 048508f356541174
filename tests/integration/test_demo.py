"""The demo on a small stream: every message accounted for, and the report shows every run.

Deployed STANDARD, whose executions are listed and named (``sha256(url)-n``); `make demo`'s own
test (tests/cli/test_cli_demo.py) and the report's browser test run the default, EXPRESS.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.integration.pipeline_kit import PostSpec, Recordings, execution_name
from tweetlens.demo import run_demo
from tweetlens.demo_stream import Recording
from tweetlens.report import render

pytestmark = pytest.mark.integration


def small_stream(base_url: str) -> Recording:
    """Five posts: a cat twice on two routes, one photo on both routes, a gone photo, no photo."""
    return Recordings().build(
        [
            PostSpec("Sunday nap champion", ("cat",), (f"{base_url}/media/chelsea.jpg",)),
            PostSpec("Not a dog, still", ("dog",), (f"{base_url}/media/chelsea.jpg",)),
            PostSpec(
                "Selfie with the crew", ("kitten", "puppy"), (f"{base_url}/media/astronaut.jpg",)
            ),
            PostSpec("Deleted already", ("cat",), (f"{base_url}/faults/404",)),
            PostSpec("Words only", ("cat",)),
        ]
    )


def test_demo_accounts_for_every_message_of_a_small_stream() -> None:
    # GIVEN a small stream with a duplicate, a photo on both routes and a photo that is gone
    bases: list[str] = []

    def stream(base_url: str) -> Recording:
        bases.append(base_url)
        return small_stream(base_url)

    # WHEN the demo runs it through the whole pipeline, deployed STANDARD
    result = run_demo(recording=stream, timeout=60.0, workflow_type="STANDARD")

    # THEN nothing is lost and every invariant holds, message by message
    tally = result.accounting
    assert tally.per_message
    assert tally.problems() == []
    assert (tally.lost, tally.unsettled, tally.orphan_executions) == (0, [], [])
    assert {route: t.published for route, t in tally.routes.items()} == {"cats": 3, "dogs": 2}
    assert result.producer_runs == 1
    # AND three images were tried: two classified, the gone one dead-lettered with its reason
    (base,) = bases
    urls = {
        "chelsea": f"{base}/media/chelsea.jpg",
        "astronaut": f"{base}/media/astronaut.jpg",
        "gone": f"{base}/faults/404",
    }
    assert sorted((e.name, e.status) for e in tally.executions) == sorted(
        [
            (execution_name(urls["chelsea"]), "DONE"),
            (execution_name(urls["astronaut"]), "DONE"),
            (execution_name(urls["gone"]), "FAILED"),
        ]
    )
    assert sum(t.classified for t in tally.routes.values()) == 2
    assert sum(t.duplicates for t in tally.routes.values()) == 2
    assert tally.routes["cats"].dead_letters == Counter({"ImageNotFound": 1})
    assert sorted((r.url, r.status) for r in result.results) == sorted(
        [(urls["chelsea"], "DONE"), (urls["astronaut"], "DONE"), (urls["gone"], "FAILED")]
    )
    # AND the HTML report draws every execution
    html = render(result)
    assert html.startswith("<!doctype html>")
    for execution in tally.executions:
        assert execution.name in html
