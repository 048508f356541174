"""Options and error handling shared by the commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from tweetlens.project import TEMPLATE_NAME, TemplateNotFound, find_template
from tweetlens.stack import DeployedStack, StackNotFound, resolve_stack

if TYPE_CHECKING:
    from rich.console import Console

# Relative: the template of the project in the current directory (``tweetlens.project``).
DEFAULT_TEMPLATE = Path(TEMPLATE_NAME)


def stack_options[F: Callable[..., Any]](function: F) -> F:
    """--stack-name/--region: inspect a stack in AWS instead of the running local cloud."""
    function = click.option(
        "--region", default=None, help="AWS region of --stack-name (default: your AWS config)."
    )(function)
    return click.option(
        "--stack-name",
        default=None,
        metavar="NAME",
        help="A stack deployed with `sam deploy`; default: the local cloud of `tweetlens up`.",
    )(function)


def _template(_context: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    try:
        return find_template(value)
    except TemplateNotFound as error:
        raise click.UsageError(str(error)) from error


def template_option[F: Callable[..., Any]](function: F) -> F:
    return click.option(
        "--template",
        "-t",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        callback=_template,
        show_default=f"./{TEMPLATE_NAME}",
        help="The SAM template to deploy into the local cloud.",
    )(function)


def parameter_option[F: Callable[..., Any]](function: F) -> F:
    return click.option(
        "--parameter-overrides",
        "--param",
        "parameters",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a template parameter (repeatable).",
    )(function)


def workflow_type_option[F: Callable[..., Any]](function: F) -> F:
    return click.option(
        "--workflow-type",
        type=click.Choice(["STANDARD", "EXPRESS"]),
        default=None,
        help="Deploy with this WorkflowType (default: the template's, EXPRESS for tweetlens's "
        "own). tweetlens's template is deployed with ExpressLogLevel=ALL, so every Express "
        "execution can be listed and traced.",
    )(function)


def parse_parameters(values: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--param")
        parsed[key] = setting
    return parsed


@contextmanager
def readable_errors() -> Iterator[None]:
    """Turn library and AWS errors into one clear line and a non-zero exit."""
    try:
        yield
    except click.ClickException:
        raise
    except StackNotFound as error:
        raise click.ClickException(str(error)) from error
    except ClientError as error:
        details = error.response.get("Error", {})
        raise click.ClickException(
            f"{details.get('Code', 'AWS error')}: {details.get('Message', error)}"
        ) from error
    except EndpointConnectionError as error:
        raise click.ClickException(
            f"{error}: nothing answers there (a local cloud whose `tweetlens up` has stopped?)"
        ) from error
    except BotoCoreError as error:
        raise click.ClickException(str(error)) from error


def open_stack(stack_name: str | None, region: str | None) -> DeployedStack:
    with readable_errors():
        return resolve_stack(stack_name, region)


def terminal() -> Console:
    """A console for standard output, sized for the terminal as it is now.

    Made per use rather than once per module: rich reads ``COLUMNS`` when a console is made,
    and commands are imported on first use, so a module-level console would keep the width
    of whichever command line imported it first (in one process: the tests' CliRunner).
    """
    from rich.console import Console  # noqa: PLC0415 - `invoke` through a running cloud skips rich

    return Console()
