"""`tweetlens console`: the web console over the running local cloud or a stack in AWS."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any

import click

from tweetlens.cli.common import readable_errors, terminal
from tweetlens.console import CloudActivity, ConsoleData, ConsoleServer, NotLoopback, create_app
from tweetlens.console.data import InvocationSource
from tweetlens.console.server import DEFAULT_PORT
from tweetlens.demo import STATE_MACHINE, record_accepted
from tweetlens.stack import DeployedStack, aws_stack, local_stack


def console_options[F: Callable[..., Any]](function: F) -> F:
    """--console-host/--console-port, shared by `console` (as --host/--port) and `up`."""
    function = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=DEFAULT_PORT,
        show_default=True,
        help="Port of the console (0: any free port).",
    )(function)
    return click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Loopback address to listen on (127.0.0.1 or ::1); any other is refused.",
    )(function)


@contextmanager
def serving(data: ConsoleData, host: str, port: int) -> Iterator[ConsoleServer]:
    """The console served in a thread until the block ends; errors as one readable line."""
    # One line per request would bury what the user is looking at.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        server = ConsoleServer(create_app(data), host=host, port=port)
        server.start()
    except NotLoopback as error:
        raise click.BadParameter(str(error), param_hint="--host") from error
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from error
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def console_beside_cloud(
    enabled: bool, stack: DeployedStack, cloud: InvocationSource, port: int
) -> Iterator[None]:
    """`tweetlens up --console`: the console over the cloud this process runs.

    In the same process, the overview also reads the functions' logs (published, lost) and the
    cloud's record of every message SQS accepts on the route queues from now on, so it settles
    message by message, as `tweetlens demo` does.
    """
    if not enabled:
        yield
        return
    with ExitStack() as stack_of_contexts:
        # Another template (no ClassifyImage state machine) has no messages of ours to settle.
        accepted = (
            stack_of_contexts.enter_context(record_accepted(stack))
            if STATE_MACHINE in stack.resources
            else None
        )
        data = ConsoleData.fixed(stack, CloudActivity(cloud), accepted)
        with serving(data, "127.0.0.1", port) as server:
            terminal().print(f"tweetlens console at {server.url}")
            yield


def wait_for_ctrl_c() -> None:
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    stopped.wait()


@click.command("console")
@console_options
@click.option(
    "--stack-name",
    default=None,
    metavar="NAME",
    help="A stack deployed with `sam deploy`; default: the local cloud of `tweetlens up`.",
)
@click.option("--region", default=None, help="AWS region of --stack-name (default: your config).")
def console_command(host: str, port: int, stack_name: str | None, region: str | None) -> None:
    """Serve the web console: results, executions, dead letters and the overview.

    It looks at the cloud of `tweetlens up` (found again if that restarts), or at a stack in
    AWS with your credentials. It listens on loopback only, until Ctrl-C. `tweetlens up
    --console` starts the cloud and the console together, and its overview also counts what
    was published and lost.

    Example:

        tweetlens console --port 8800
    """
    if stack_name:
        name = stack_name
        data = ConsoleData(load_stack=lambda: aws_stack(name, region))
        # A stack in AWS should be there now: a wrong name or missing credentials fail here.
        with readable_errors():
            data.stack()
    else:
        data = ConsoleData(load_stack=local_stack, reload=True)
    with serving(data, host, port) as server:
        terminal().print(f"tweetlens console at {server.url} (Ctrl-C to stop)")
        wait_for_ctrl_c()
