"""`tweetlens invoke` through a running `tweetlens up`: its Lambda Invoke API, same output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import REPO_ROOT, event_file, run_cli, state_file_runner
from tests.cli.test_cli_invoke import BLOCKED_MESSAGE, _framed_log_lines
from tweetlens.cli.invoke import RunningCloud, running_cloud
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import write_local_state

pytestmark = pytest.mark.integration

TEMPLATE = REPO_ROOT / "template.yaml"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    """A local cloud as `tweetlens up` runs it, with its state file."""
    state_file = tmp_path_factory.mktemp("invoke-state") / "local-cloud.json"
    with LocalPipeline(
        state_file=state_file,
        run_pollers=False,
        parameter_overrides={"ClassifierMaxConcurrency": "2"},
    ) as pipeline:
        yield pipeline


def _running_runner(pipeline: LocalPipeline) -> CliRunner:
    assert pipeline.state_file is not None
    return state_file_runner(pipeline.state_file)


def test_running_cloud_answers_with_the_same_payload_and_report(running: LocalPipeline) -> None:
    # GIVEN a running local cloud of this repo's template, and the blocked-URL event
    event = event_file("fetch_image_blocked.json")
    before = len(running.cloud.invocations())

    # WHEN the fetch function is invoked
    result = run_cli(_running_runner(running), "invoke", "FetchImageFunction", "-e", str(event))

    # THEN it ran in the running cloud: one more invocation there, with the request id printed
    invocations = running.cloud.invocations()
    assert len(invocations) == before + 1
    lines = _framed_log_lines(result.stderr)
    assert lines[-1] == invocations[-1].report
    # AND the output has the fresh cloud's shapes: the error payload on stdout, exit 1
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["errorType"] == "BlockedUrl"
    assert payload["errorMessage"] == BLOCKED_MESSAGE
    assert sum(line.startswith("REPORT RequestId: ") for line in lines) == 1
    assert f"[ERROR] BlockedUrl: {BLOCKED_MESSAGE}" in lines


def test_running_cloud_unknown_function_is_the_same_clear_line(running: LocalPipeline) -> None:
    # GIVEN a running local cloud and a function name the template does not have
    event = event_file("producer_scheduled.json")

    # WHEN it is invoked
    result = run_cli(_running_runner(running), "invoke", "NoSuchFunction", "-e", str(event))

    # THEN the line is the one a fresh cloud prints
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: no function 'NoSuchFunction' in the template; functions: "
        "ClassifierFunction, ExecutionCloserFunction, FetchImageFunction, ProducerFunction, "
        "StoreResultFunction\n"
    )


def _described(**changes: object) -> RunningCloud:
    values: dict[str, object] = {
        "endpoint_url": "http://127.0.0.1:1",
        "region": "us-east-1",
        "template": TEMPLATE.resolve(),
        "parameter_overrides": {"ClassifierMaxConcurrency": "2"},
        "functions": frozenset({"FetchImageFunction"}),
        "resources": {"FetchImageFunction": "f"},
    }
    values.update(changes)
    return RunningCloud(**values)  # type: ignore[arg-type]


def test_running_cloud_refuses_an_event_over_lambdas_6_mb_in_one_clear_line(
    running: LocalPipeline, tmp_path: Path
) -> None:
    # GIVEN a running local cloud and an event of 6 MB and one byte (Lambda's synchronous
    # Invoke takes 6 x 1024 x 1024 bytes at most)
    event = tmp_path / "big.json"
    frame = len(json.dumps({"padding": ""}))
    event.write_text(json.dumps({"padding": "x" * (6_291_457 - frame)}), encoding="utf-8")
    before = len(running.cloud.invocations())

    # WHEN the fetch function is invoked with it
    result = run_cli(_running_runner(running), "invoke", "FetchImageFunction", "-e", str(event))

    # THEN Lambda's refusal is one line with the size and the limit, and the function never ran
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: RequestEntityTooLargeException: 6291457 byte payload is too large for the "
        "RequestResponse invocation type (limit 6291456 bytes)\n"
    )
    assert len(running.cloud.invocations()) == before


@pytest.mark.parametrize(
    ("template", "overrides", "serves"),
    [
        pytest.param(TEMPLATE, {}, True, id="no --param"),
        pytest.param(TEMPLATE, {"ClassifierMaxConcurrency": "2"}, True, id="the same value"),
        pytest.param(TEMPLATE, {"ClassifierMaxConcurrency": "3"}, False, id="another value"),
        pytest.param(TEMPLATE, {"PostSource": "x"}, False, id="a parameter it was not given"),
        pytest.param(
            REPO_ROOT / "tests/localcloud/sample_app/template.yaml",
            {},
            False,
            id="another template",
        ),
    ],
)
def test_running_cloud_serves_only_its_template_and_parameters(
    template: Path, overrides: dict[str, str], serves: bool
) -> None:
    # GIVEN a running cloud of this repo's template, started with ClassifierMaxConcurrency=2
    cloud = _described()

    # WHEN asked whether it serves a template with some --param values
    # THEN only its own template, with values it was given, is served
    assert cloud.serves(template, overrides) is serves


def test_state_file_without_what_invoke_needs_is_no_running_cloud(tmp_path: Path) -> None:
    # GIVEN a state file written without the template (a foreign tool's, or an older one)
    path = tmp_path / "local-cloud.json"
    write_local_state(path, endpoint_url="http://127.0.0.1:1", region="us-east-1", resources={})

    # WHEN it is read for invoke, and so is a missing and a broken one
    # THEN none names a running cloud (a fresh one answers instead)
    assert running_cloud(path) is None
    assert running_cloud(tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert running_cloud(tmp_path / "broken.json") is None


def test_state_file_written_by_up_names_the_running_cloud(running: LocalPipeline) -> None:
    # GIVEN the state file a running local pipeline wrote
    assert running.state_file is not None

    # WHEN it is read for invoke
    described = running_cloud(running.state_file)

    # THEN it names the cloud's endpoint, template, parameters and functions, and it answers
    assert described is not None
    assert described.endpoint_url == running.cloud.endpoint_url
    assert described.template == TEMPLATE.resolve()
    assert described.parameter_overrides == {"ClassifierMaxConcurrency": "2"}
    assert described.functions == frozenset(running.cloud.functions)
    assert described.answers() is True
