"""`tweetlens invoke`: one function, once, like `sam local invoke` but with no Docker.

Two ways, the same output: through the running local cloud of `tweetlens up` when there is
one for this template (its Lambda Invoke API, well under a second), otherwise in a fresh
local cloud deployed for this one call. Only the second needs the emulator, so the heavy
imports (moto, SAM's translator) are made there and nowhere else: a call through a running
cloud imports click and boto3.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import click
from botocore.config import Config

from tweetlens.cli import quick_imports, skip_interpreter_teardown
from tweetlens.cli.common import (
    parameter_option,
    parse_parameters,
    readable_errors,
    template_option,
)
from tweetlens.stack import state_file_path

if TYPE_CHECKING:
    from tweetlens.localcloud.cloud import LocalCloud

# Lambda's longest timeout, plus time for the cloud to answer: the read must outlast any call.
_INVOKE_READ_TIMEOUT_SECONDS = 900 + 60
_CONNECT_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class InvokeOutcome:
    """What the command prints: logs framed START … END, REPORT on stderr; payload on stdout."""

    logs: str
    report: str
    payload: str
    ok: bool


@dataclass(frozen=True)
class RunningCloud:
    """The local cloud of a running `tweetlens up`, as its state file describes it."""

    endpoint_url: str
    region: str
    template: Path
    parameter_overrides: dict[str, str]
    functions: frozenset[str]
    resources: dict[str, str]

    def serves(self, template: Path, overrides: dict[str, str]) -> bool:
        """True when it runs ``template`` with every one of ``overrides`` as given."""
        return template.resolve() == self.template and all(
            self.parameter_overrides.get(key) == value for key, value in overrides.items()
        )

    def answers(self) -> bool:
        """True when something listens at the endpoint (the state file of a killed `up`
        stays behind; its port refuses connections)."""
        parts = urlsplit(self.endpoint_url)
        try:
            with socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 80), _CONNECT_TIMEOUT_SECONDS
            ):
                return True
        except OSError:
            return False


def running_cloud(path: Path) -> RunningCloud | None:
    """The running cloud the state file at ``path`` names, or None (none, foreign, or old)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return RunningCloud(
            endpoint_url=str(payload["endpoint_url"]),
            region=str(payload["region"]),
            template=Path(str(payload["template"])),
            parameter_overrides={
                str(key): str(value) for key, value in payload["parameter_overrides"].items()
            },
            functions=frozenset(str(name) for name in payload["functions"]),
            resources={str(key): str(value) for key, value in payload["resources"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # No state file, or one without what invoke needs: a fresh cloud answers instead.
        return None


def invoke_running(cloud: RunningCloud, function: str, payload: bytes) -> InvokeOutcome:
    """Lambda's Invoke API on the running cloud, with its logs (``LogType=Tail``).

    ``payload`` is sent as it is, as ``aws lambda invoke`` sends the event file: Lambda's size
    limit counts those bytes, not those of the event re-encoded here."""
    if function not in cloud.functions:
        raise click.ClickException(_unknown_function(function, cloud.functions))
    client = boto3.session.Session().client(
        "lambda",
        region_name=cloud.region,
        endpoint_url=cloud.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fixed fake key
        # An invocation is never retried: a retry would run the handler twice.
        config=Config(
            read_timeout=_INVOKE_READ_TIMEOUT_SECONDS,
            connect_timeout=_CONNECT_TIMEOUT_SECONDS * 10,
            retries={"total_max_attempts": 1},
        ),
    )
    response = client.invoke(
        FunctionName=cloud.resources[function],
        Payload=payload,
        LogType="Tail",
    )
    logs = base64.b64decode(response.get("LogResult", "")).decode("utf-8", errors="replace")
    report = next(
        (line for line in reversed(logs.splitlines()) if line.startswith("REPORT RequestId: ")),
        "",
    )
    return InvokeOutcome(
        logs=logs,
        report=report,
        payload=response["Payload"].read().decode("utf-8"),
        ok="FunctionError" not in response,
    )


@contextmanager
def fresh_cloud(template: Path, function: str, overrides: dict[str, str]) -> Iterator[LocalCloud]:
    """A fresh local cloud (no schedules, no pollers) holding only what ``function`` needs.

    tweetlens's own template runs on its local pipeline (replayed posts, loopback image host).
    The labeler is built only if the call labels a picture.
    """
    # The emulator's modules, imported only here (see the module's docstring).
    with quick_imports():
        from tweetlens.localcloud.cloud import LocalCloud
        from tweetlens.localcloud.labelers import (
            DeferredLabeler,
            OpenCvLabeler,
            PictureCachingLabeler,
        )
        from tweetlens.pipeline import LocalPipeline
        from tweetlens.project import is_tweetlens_template

    if is_tweetlens_template(template):
        with LocalPipeline(
            template=template,
            run_pollers=False,
            parameter_overrides=overrides,
            only_function=function,
            labeler=DeferredLabeler(lambda: PictureCachingLabeler(OpenCvLabeler())),
        ) as pipeline:
            yield pipeline.cloud
    else:
        with LocalCloud(
            template,
            parameter_overrides=overrides,
            labeler=DeferredLabeler(OpenCvLabeler),
            run_schedules=False,
            run_pollers=False,
            only_function=function,
        ) as cloud:
            yield cloud


def _refuse_too_large(raw: bytes) -> None:
    """Lambda's refusal of an event file over its synchronous payload limit, counted on the
    file's bytes as the running cloud's Invoke API counts them (``LocalCloud.invoke`` can
    only measure the event re-encoded, which may be smaller or larger than the file)."""
    with quick_imports():
        from tweetlens.localcloud.errors import (
            SYNC_INVOKE_PAYLOAD_LIMIT,
            PayloadTooLargeError,
        )

    if len(raw) > SYNC_INVOKE_PAYLOAD_LIMIT:
        raise click.ClickException(str(PayloadTooLargeError(len(raw))))


def invoke_fresh(
    template: Path, function: str, event: dict[str, Any], overrides: dict[str, str]
) -> InvokeOutcome:
    """Deploy what ``function`` needs into a fresh local cloud and invoke it once."""
    with quick_imports():
        from tweetlens.localcloud.errors import (
            LocalCloudError,
            UnknownFunctionError,
        )

    try:
        with fresh_cloud(template, function, overrides) as cloud:
            result = cloud.invoke(function, event)
    except UnknownFunctionError as error:
        raise click.ClickException(_unknown_function(function, error.functions)) from error
    except LocalCloudError as error:
        raise click.ClickException(str(error)) from error
    finally:
        # The cloud is stopped (workers killed, servers closed, temporary files removed).
        skip_interpreter_teardown()
    return InvokeOutcome(
        logs=result.logs, report=result.report, payload=result.wire_payload(), ok=result.ok
    )


def _unknown_function(function: str, known: frozenset[str]) -> str:
    if not known:
        return f"no function {function!r} in the template; it declares no function"
    return f"no function {function!r} in the template; functions: {', '.join(sorted(known))}"


@click.command()
@click.argument("function")
@click.option(
    "--event",
    "-e",
    "event_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON event file, e.g. one of events/.",
)
@template_option
@parameter_option
@click.option(
    "--fresh",
    is_flag=True,
    help="Deploy into a fresh local cloud even when `tweetlens up` runs this template.",
)
def invoke(
    function: str, event_path: Path, template: Path, parameters: tuple[str, ...], fresh: bool
) -> None:
    """Invoke one function of the template once, like `sam local invoke` but with no Docker.

    When `tweetlens up` is running this template (with these --param values), FUNCTION (its
    logical id) is invoked there, through the local cloud's Lambda Invoke API: it sees that
    cloud's queues and tables. Otherwise the template is deployed into a fresh local cloud
    (no schedules, no pollers) for this one call. Either way the response is printed on
    stdout and the function's logs, ending with its REPORT line, on stderr.

    Example:

        tweetlens invoke FetchImageFunction -e events/fetch_image_blocked.json
    """
    raw = event_path.read_bytes()
    try:
        event = json.loads(raw.decode("utf-8"))
    except ValueError as error:
        raise click.ClickException(f"{event_path} is not JSON: {error}") from error
    if not isinstance(event, dict):
        # The local runtime hands the handler a JSON object, as every event source does.
        raise click.ClickException(f"{event_path} is JSON but not an object; an event is one")
    overrides = parse_parameters(parameters)
    running = None if fresh else running_cloud(state_file_path())
    if running is not None and running.serves(template, overrides) and running.answers():
        with readable_errors():
            outcome = invoke_running(running, function, raw)
    else:
        _refuse_too_large(raw)
        outcome = invoke_fresh(template, function, event, overrides)
    logs = outcome.logs.rstrip()
    if logs:
        click.echo(logs, err=True)
    # The runtime frames logs as CloudWatch shows them (START ... END, REPORT): print the REPORT
    # line on its own only when the logs do not already end with it, never twice.
    if not logs.endswith(outcome.report):
        click.echo(outcome.report, err=True)
    click.echo(outcome.payload)
    if not outcome.ok:
        raise SystemExit(1)
