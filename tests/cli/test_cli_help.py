"""Every command and sub-command documents itself with an `Example:` of its own use."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import run_cli
from tweetlens.cli import cli


def _walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Through list_commands/get_command, as click's own help does: the top-level group
    # imports its commands only when asked for them.
    context = click.Context(group)
    paths = [path]
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            paths.extend(_walk(command, (*path, name)))
        else:
            paths.append((*path, name))
    return paths


COMMAND_PATHS = _walk(cli)


def test_the_walk_reaches_every_command() -> None:
    # GIVEN the tweetlens group, with commands and a group of sub-commands
    # WHEN its commands are walked
    # THEN the walk finds the group itself, every top-level command, and the sub-commands
    # inside groups, so the test below covers commands added later too
    assert COMMAND_PATHS[0] == ()
    assert {path[0] for path in COMMAND_PATHS[1:]} == set(cli.list_commands(click.Context(cli)))
    assert {
        ("demo",),
        ("dlq",),
        ("dlq", "list"),
        ("dlq", "redrive"),
        ("coldstart",),
        ("invoke",),
        ("results",),
        ("trace",),
        ("up",),
    } <= set(COMMAND_PATHS)
    assert len(COMMAND_PATHS) == len(set(COMMAND_PATHS))


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "tweetlens")
def test_help_shows_an_example_of_the_command_itself(
    runner: CliRunner, path: tuple[str, ...]
) -> None:
    # GIVEN a command of the tweetlens group
    command_line = " ".join(("tweetlens", *path))

    # WHEN its --help is asked for
    result = run_cli(runner, *path, "--help")

    # THEN it exits 0 with the help on stdout only, and its Example: block starts with a use
    # of that very command
    assert result.exit_code == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Usage: {command_line} [OPTIONS]")
    example = lines.index("  Example:")
    assert lines[example + 1] == ""
    assert lines[example + 2].startswith(f"      {command_line} ")
