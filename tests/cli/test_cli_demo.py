"""`tweetlens demo` (`make demo`): the whole pipeline on the recorded stream, deployed with the
template's defaults (WorkflowType EXPRESS) and with STANDARD, its summary and its report: the
same figures for both types."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import run_cli, table_header, table_rows

pytestmark = pytest.mark.integration

SUMMARY_COLUMNS = [
    "route",
    "published",
    "classified",
    "duplicates",
    "dead letters by reason",
    "lost",
]
# The seeded stream's five broken photos are all posted under cat hashtags, one letter each.
# The 404 photo is posted twice: the second post is a duplicate of the first one's failure
# (a URL that failed for good stays failed until its letter is redriven), whether it is handled
# while the first post's execution runs or after it failed.
CATS_DEAD_LETTERS = "BlockedUrl 1, ImageNotFound 2, ImageTooLarge 1, UnsupportedImageType 1"
CATS_DEAD = 5


@pytest.mark.parametrize(
    "workflow_type", [[], ["--workflow-type", "STANDARD"]], ids=["default-express", "standard"]
)
def test_demo_accounts_for_every_message_and_writes_the_report(
    runner: CliRunner, tmp_path: Path, workflow_type: list[str]
) -> None:
    # GIVEN a place for the report
    report = tmp_path / "r.html"

    # WHEN the demo runs, with the template's WorkflowType or the other one
    result = run_cli(runner, "demo", "--report", str(report), *workflow_type)

    # THEN it succeeds, and the summary accounts for every message of each route
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Starting the local cloud and deploying template.yaml ..."
    assert "Where every message ended" in [line.strip() for line in lines]
    assert table_header(result.stdout) == SUMMARY_COLUMNS
    rows = {
        row[0]: dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in table_rows(result.stdout)
    }
    assert sorted(rows) == ["cats", "dogs"]
    assert rows["cats"]["published"] == "37"
    assert rows["cats"]["dead letters by reason"] == CATS_DEAD_LETTERS
    assert (rows["dogs"]["published"], rows["dogs"]["dead letters by reason"]) == ("13", "-")
    assert [rows[route]["lost"] for route in ("cats", "dogs")] == ["0", "0"]
    # Which route classifies the one photo posted on both is a race; the totals are not.
    for route, dead in (("cats", CATS_DEAD), ("dogs", 0)):
        row = rows[route]
        assert int(row["classified"]) + int(row["duplicates"]) + dead == int(row["published"])
    assert int(rows["cats"]["classified"]) + int(rows["dogs"]["classified"]) == 5
    # AND every classified image went through DetectLabels exactly once
    assert any(
        line.startswith("DetectLabels calls: 5 for 5 images (labelled twice: 0); finished in ")
        for line in lines
    )
    # AND the report is written, with the drawn traces in it
    assert lines[-1] == f"HTML report with thumbnails and execution traces: {report}"
    assert "<svg" in report.read_text(encoding="utf-8")
