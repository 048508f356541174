"""Bad options of a chaos run are refused by name, before anything is deployed: no traceback."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from tweetlens.chaos import ChaosConfig, ChaosReport
from tweetlens.cli import cli

# The package re-exports the command under the module's own name: fetch the module itself.
chaos_command = importlib.import_module("tweetlens.cli.chaos")

USAGE = "Usage: tweetlens chaos [OPTIONS]\nTry 'tweetlens chaos -h' for help.\n\n"


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[ChaosConfig]:
    """The configurations a run was started with (none, when an option is refused)."""
    started: list[ChaosConfig] = []

    def run(config: ChaosConfig, **_: object) -> ChaosReport:
        started.append(config)
        raise AssertionError("a refused option must start no run")

    monkeypatch.setattr(chaos_command, "run_chaos", run)
    return started


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--posts", "-5"], "Invalid value for '--posts': -5 is not in the range 20<=x<=5000."),
        (
            ["--workflow-type", "express"],
            "Invalid value for '--workflow-type': 'express' is not one of 'STANDARD', 'EXPRESS'.",
        ),
        (["--seed", "abc"], "Invalid value for '--seed': 'abc' is not a valid integer."),
        (["--seed", "1.5"], "Invalid value for '--seed': '1.5' is not a valid integer."),
    ],
    ids=["negative-posts", "unknown-workflow-type", "seed-not-a-number", "seed-not-whole"],
)
def test_the_command_refuses_a_bad_option_by_name(
    runs: list[ChaosConfig], args: list[str], error: str
) -> None:
    # GIVEN `tweetlens chaos` with one bad option
    # WHEN it runs
    result = CliRunner().invoke(cli, ["chaos", *args], prog_name="tweetlens")
    # THEN it names the option and what is wrong with it, exits 2 (a usage error) without a
    # traceback, and starts no run
    assert (result.exit_code, type(result.exception)) == (2, SystemExit)
    assert result.output == f"{USAGE}Error: {error}\n"
    assert runs == []


def _refusals(**options: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as refused:
        ChaosConfig.for_posts(**options)
    return [(error["loc"], error["msg"]) for error in refused.value.errors()]


@pytest.mark.parametrize(
    ("options", "refusals"),
    [
        (
            {"posts": -5, "seed": 11},
            [(("posts",), "Input should be greater than or equal to 20")],
        ),
        # Before: a TypeError from the size's arithmetic ('<' between str and int).
        ({"posts": "40", "seed": 11}, [(("posts",), "Input should be a valid integer")]),
        ({"posts": 40.5, "seed": 11}, [(("posts",), "Input should be a valid integer")]),
        (
            {"posts": 40, "seed": 11, "workflow_type": "express"},
            [(("workflow_type",), "Input should be 'STANDARD' or 'EXPRESS'")],
        ),
        (
            {"posts": 40, "seed": "abc"},
            [(("seed",), "Input should be a valid integer, unable to parse string as an integer")],
        ),
    ],
    ids=["negative-posts", "posts-as-text", "posts-not-whole", "unknown-workflow-type", "seed"],
)
def test_the_configuration_refuses_a_bad_option_by_name(
    options: dict[str, Any], refusals: list[tuple[tuple[str | int, ...], str]]
) -> None:
    # GIVEN / WHEN a chaos run configured in Python with one bad option
    # THEN the configuration refuses it with a ValidationError naming the field
    assert _refusals(**options) == refusals
