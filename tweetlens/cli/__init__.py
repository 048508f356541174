"""The `tweetlens` command line: thin commands over the library, one module per topic.

Commands are imported when they run, not when the group is built: most of them need the
emulator (moto, SAM's translator: seconds of imports), while `tweetlens invoke` against a
running local cloud needs only boto3.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import sys
from collections.abc import Iterator

import click

# name → "module:attribute" of the click command.
COMMANDS: dict[str, str] = {
    "up": "tweetlens.cli.run:up",
    "demo": "tweetlens.cli.run:demo",
    "invoke": "tweetlens.cli.invoke:invoke",
    "trace": "tweetlens.cli.inspect:trace",
    "results": "tweetlens.cli.inspect:results",
    "dlq": "tweetlens.cli.inspect:dlq",
    "console": "tweetlens.cli.console:console_command",
    "chaos": "tweetlens.cli.chaos:chaos",
    "bench": "tweetlens.cli.bench:bench",
    "coldstart": "tweetlens.cli.coldstart:coldstart",
}


@contextlib.contextmanager
def quick_imports() -> Iterator[None]:
    """Import the emulator's modules without the garbage collector, then freeze them.

    Imports allocate millions of objects that live until exit (moto loads its service models
    and EC2 catalogues as modules): each allocation burst triggers full collections that find
    nothing, and the collection at exit walks them all once more. With collection paused and
    the imported objects frozen (``gc.freeze``), a command starts and ends about a second
    sooner; objects made afterwards are collected as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
        # A Powertools Logger made by these imports sets its logger's level: quiet it again.
        if _quiet:
            _quiet_logs()


_quiet = False


def _quiet_logs() -> None:
    # The emulator logs every caught task failure with a stack of interpreter internals;
    # the commands report outcomes themselves, readably.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("localcloud").setLevel(logging.WARNING)


class LazyGroup(click.Group):
    """A group whose commands, named in ``COMMANDS``, are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module_name, _, attribute = COMMANDS[cmd_name].partition(":")
            with quick_imports():
                command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tweetlens")
@click.option("--verbose", "-v", is_flag=True, help="Show the local cloud's and moto's logs.")
def cli(verbose: bool) -> None:
    """tweetlens: classify the photos posted on X, on AWS or on a Docker-less local cloud.

    Example:

        tweetlens demo
    """
    global _quiet  # noqa: PLW0603 - one process, one command line
    _quiet = not verbose
    if _quiet:
        _quiet_logs()


class _Teardown:
    """Whether the finished command left anything for the interpreter's own teardown to do."""

    needed = True


def skip_interpreter_teardown() -> None:
    """Called by a command that has stopped everything it started (workers, servers, the
    emulator, temporary files): the process may end without the interpreter's teardown.

    After a fresh local cloud that teardown walks every object moto imported and waits on the
    Step Functions interpreter's abandoned threads: 0.3 s to several seconds of a `tweetlens
    invoke` spent on nothing. Only ``main`` (the console script) acts on it; a command run
    in-process (tests, ``CliRunner``) ends as usual.
    """
    _Teardown.needed = False


def main() -> None:
    try:
        cli(prog_name="tweetlens")
    except SystemExit as done:
        if _Teardown.needed:
            raise
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
        with contextlib.suppress(OSError, ValueError):
            if isinstance(done.code, str):
                sys.stderr.write(done.code + "\n")
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
