"""The `tweetlens` command line: thin commands over the library, one module per topic."""

from __future__ import annotations

import logging

import click

from tweetlens.cli.bench import bench
from tweetlens.cli.chaos import chaos
from tweetlens.cli.console import console_command
from tweetlens.cli.inspect import dlq, results, trace
from tweetlens.cli.run import demo, invoke, up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tweetlens")
@click.option("--verbose", "-v", is_flag=True, help="Show the local cloud's and moto's logs.")
def cli(verbose: bool) -> None:
    """tweetlens: classify the photos posted on X, on AWS or on a Docker-less local cloud.

    Example:

        tweetlens demo
    """
    if not verbose:
        # The emulator logs every caught task failure with a stack of interpreter internals;
        # the commands report outcomes themselves, readably.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        logging.getLogger("localcloud").setLevel(logging.WARNING)


for command in (up, demo, invoke, trace, results, dlq, console_command, chaos, bench):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="tweetlens")
