"""The `tweetlens` command line: thin commands over the library, one module per topic."""

from __future__ import annotations

import click

from tweetlens.cli.inspect import dlq, results, trace
from tweetlens.cli.run import demo, invoke, up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tweetlens")
def cli() -> None:
    """tweetlens: classify the photos posted on X, on AWS or on a Docker-less local cloud.

    Example:

        tweetlens demo
    """


for command in (up, demo, invoke, trace, results, dlq):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="tweetlens")
