"""The chaos command's exit status and errors, with the run itself replaced: no network."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import table_rows
from tweetlens.chaos import ChaosConfig, ChaosError, ChaosReport, Invariant
from tweetlens.project import TEMPLATE_NAME

REPO_TEMPLATE = Path(__file__).resolve().parent.parent.parent / TEMPLATE_NAME

# The package re-exports the command under the module's own name: fetch the module itself.
chaos_command = importlib.import_module("tweetlens.cli.chaos")


def _report(*, ok: bool, superseded_letters: int = 0, letter_copies: int = 0) -> ChaosReport:
    return ChaosReport(
        seed=7,
        posts=40,
        seconds=1.0,
        published=3,
        published_by_producer=3,
        duplicate_deliveries=0,
        republished_after_crash=0,
        done=1,
        duplicates=1,
        dead_letters={"ImageNotFound": 1},
        superseded_letters=superseded_letters,
        letter_copies=letter_copies,
        lost=0,
        in_progress=0,
        labelled_twice=0,
        unique_urls=2,
        rekognition_calls=1,
        rekognition_throttled=0,
        dynamodb_throttled=0,
        producer_runs=1,
        producer_crashes=0,
        workers_killed={"producer": 0, "classifier": 0},
        adopted_executions=0,
        executions_aborted=0,
        executions_timed_out=0,
        dead_letters_refused=0,
        unexpected_outcomes={},
        invariants=[Invariant(name="no item left in progress", ok=ok, detail="0 item(s)")],
    )


def test_a_broken_invariant_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run that reports a broken invariant
    seen: list[ChaosConfig] = []

    def run(config: ChaosConfig, **_: object) -> ChaosReport:
        seen.append(config)
        return _report(ok=False)

    monkeypatch.setattr(chaos_command, "run_chaos", run)
    # WHEN the command runs
    result = CliRunner().invoke(chaos_command.chaos, ["--posts", "40", "--seed", "7"])
    # THEN it prints the invariant as broken and exits 1, with the small run's settings
    assert result.exit_code == 1
    assert "BROKEN" in result.output
    assert (seen[0].posts, seen[0].seed, seen[0].rekognition_rps) == (40, 7, 5.0)


def test_all_invariants_holding_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run whose invariants all hold
    monkeypatch.setattr(chaos_command, "run_chaos", lambda config, **_: _report(ok=True))
    # WHEN the command runs
    result = CliRunner().invoke(chaos_command.chaos, ["--posts", "40"])
    # THEN it exits 0
    assert result.exit_code == 0


def test_superseded_workflow_letters_are_their_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run that left two workflow letters whose images were classified since
    monkeypatch.setattr(
        chaos_command, "run_chaos", lambda config, **_: _report(ok=True, superseded_letters=2)
    )
    # WHEN the command runs
    result = CliRunner(env={"COLUMNS": "200"}).invoke(chaos_command.chaos, ["--posts", "40"])
    # THEN the figures count them on a line of their own, after the dead letters by reason
    assert result.exit_code == 0
    names = [row[0] for row in table_rows(result.output)]
    rows = {row[0]: row[1] for row in table_rows(result.output)}
    assert rows["workflow letters superseded (image classified since)"] == "2"
    assert names.index("workflow letters superseded (image classified since)") == (
        names.index("ImageNotFound") + 1
    )


def test_copies_of_dead_letters_are_their_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run that left three letters sent again (recognised copies)
    monkeypatch.setattr(
        chaos_command, "run_chaos", lambda config, **_: _report(ok=True, letter_copies=3)
    )
    # WHEN the command runs
    result = CliRunner(env={"COLUMNS": "200"}).invoke(chaos_command.chaos, ["--posts", "40"])
    # THEN the figures count them on a line of their own, after the superseded letters, and
    # the messages counted twice (none) on theirs
    assert result.exit_code == 0
    names = [row[0] for row in table_rows(result.output)]
    rows = {row[0]: row[1] for row in table_rows(result.output)}
    copies = "dead letters sent again (recognised copies, counted once)"
    assert (rows[copies], rows["counted twice"]) == ("3", "0")
    assert names.index(copies) == (
        names.index("workflow letters superseded (image classified since)") + 1
    )


def test_a_run_that_cannot_finish_is_a_click_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run that cannot be carried out
    def run(config: ChaosConfig, **_: object) -> ChaosReport:
        raise ChaosError("the producer failed: Runtime.ImportModuleError")

    monkeypatch.setattr(chaos_command, "run_chaos", run)
    # WHEN the command runs
    result = CliRunner().invoke(chaos_command.chaos, ["--posts", "40"])
    # THEN it says why and exits 1 without a traceback
    assert result.exit_code == 1
    assert "Error: the producer failed: Runtime.ImportModuleError" in result.output


def test_workflow_type_express_is_passed_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the command with --workflow-type EXPRESS
    seen: list[ChaosConfig] = []

    def run(config: ChaosConfig, **_: object) -> ChaosReport:
        seen.append(config)
        return _report(ok=True)

    monkeypatch.setattr(chaos_command, "run_chaos", run)
    # WHEN it runs
    result = CliRunner().invoke(
        chaos_command.chaos, ["--posts", "40", "--workflow-type", "EXPRESS"]
    )
    # THEN the run is EXPRESS, without aborts, waiting out the 432 s compressed visibility
    assert result.exit_code == 0
    config = seen[0]
    assert (config.workflow_type, config.execution_aborts, config.timeout_seconds) == (
        "EXPRESS",
        0,
        1032.0,
    )


def _configs_of_runs(monkeypatch: pytest.MonkeyPatch) -> list[ChaosConfig]:
    seen: list[ChaosConfig] = []

    def run(config: ChaosConfig, **_: object) -> ChaosReport:
        seen.append(config)
        return _report(ok=True)

    monkeypatch.setattr(chaos_command, "run_chaos", run)
    return seen


def test_workflow_type_defaults_to_the_template_s(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the command without --workflow-type, over this repo's template (default EXPRESS)
    seen = _configs_of_runs(monkeypatch)
    # WHEN it runs
    result = CliRunner().invoke(
        chaos_command.chaos, ["--posts", "40", "--template", str(REPO_TEMPLATE)]
    )
    # THEN the run exercises what a plain `sam deploy` gets: EXPRESS, without aborts
    assert result.exit_code == 0, result.output
    assert (seen[0].workflow_type, seen[0].execution_aborts, seen[0].timeout_seconds) == (
        "EXPRESS",
        0,
        1032.0,
    )


def test_workflow_type_standard_is_passed_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the command with --workflow-type STANDARD
    seen = _configs_of_runs(monkeypatch)
    # WHEN it runs
    result = CliRunner().invoke(
        chaos_command.chaos, ["--posts", "40", "--workflow-type", "STANDARD"]
    )
    # THEN the run is STANDARD, with an abort, and the 600 s idle wait
    assert result.exit_code == 0, result.output
    assert (seen[0].workflow_type, seen[0].execution_aborts, seen[0].timeout_seconds) == (
        "STANDARD",
        1,
        600.0,
    )


def test_a_template_without_a_workflow_type_default_asks_for_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a template whose WorkflowType has no default
    text = REPO_TEMPLATE.read_text(encoding="utf-8")
    template = tmp_path / TEMPLATE_NAME
    template.write_text(text.replace("    Default: EXPRESS\n", "", 1), encoding="utf-8")
    seen = _configs_of_runs(monkeypatch)
    # WHEN the command runs over it without --workflow-type
    result = CliRunner().invoke(chaos_command.chaos, ["--posts", "40", "--template", str(template)])
    # THEN it asks for the option and runs nothing
    assert result.exit_code == 2
    assert "declares no WorkflowType default of STANDARD or EXPRESS: pass --workflow-type" in (
        result.output
    )
    assert seen == []
