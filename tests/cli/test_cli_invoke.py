"""`tweetlens invoke` on a fresh local cloud: no `tweetlens up` runs this template.

The calls through a running cloud are in ``test_cli_invoke_running`` (one emulator per
process: a fresh cloud cannot start while a module's running one is up).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import REPO_ROOT, event_file, make_runner, run_cli, state_file_runner
from tweetlens.cli.invoke import fresh_cloud
from tweetlens.stack import STATE_FILE_ENV, write_local_state


@contextmanager
def loopback_port(*, listening: bool) -> Iterator[int]:
    """A loopback port that refuses connections (bound only) or accepts them (listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        if listening:
            sock.listen()
        yield int(sock.getsockname()[1])


def _state_file(path: Path, port: int) -> Path:
    """A state file of this repo's template, as `tweetlens up` writes it, at ``port``."""
    write_local_state(
        path,
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        resources={"FetchImageFunction": "tweetlens-local-FetchImageFunction-X"},
        template=REPO_ROOT / "template.yaml",
        parameter_overrides={},
        functions=["FetchImageFunction"],
    )
    return path


pytestmark = pytest.mark.integration


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    """A runner that finds no running local cloud: every call deploys a fresh one."""
    return make_runner(**{STATE_FILE_ENV: str(tmp_path / "no-local-cloud.json")})


BLOCKED_MESSAGE = (
    "host '169.254.169.254' is an IP address literal (169.254.169.254); only host names are allowed"
)


def _framed_log_lines(stderr: str) -> list[str]:
    """The invocation's log lines as CloudWatch frames them; asserts START ... END, REPORT."""
    lines = stderr.splitlines()
    assert lines[0].startswith("START RequestId: ")
    request_id = lines[0].removeprefix("START RequestId: ").split(" ", 1)[0]
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    return lines


def test_blocked_url_prints_the_error_payload_and_exits_1(runner: CliRunner) -> None:
    # GIVEN the sample event asking the fetch function for the instance metadata address
    event = event_file("fetch_image_blocked.json")

    # WHEN it is invoked
    result = run_cli(runner, "invoke", "FetchImageFunction", "-e", str(event))

    # THEN the command fails with Lambda's error payload on stdout, named BlockedUrl
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["errorType"] == "BlockedUrl"
    assert payload["errorMessage"] == BLOCKED_MESSAGE
    # AND stderr has the function's logs and exactly one REPORT line, the last one
    lines = _framed_log_lines(result.stderr)
    assert sum(line.startswith("REPORT RequestId: ") for line in lines) == 1
    assert f"[ERROR] BlockedUrl: {BLOCKED_MESSAGE}" in lines


def test_producer_with_this_repos_template_prints_its_summary(runner: CliRunner) -> None:
    # GIVEN the scheduled event, and this repo's template, whose producer replays the recorded
    # demo stream on the local cloud
    event = event_file("producer_scheduled.json")

    # WHEN the producer is invoked
    result = run_cli(runner, "invoke", "ProducerFunction", "-e", str(event))

    # THEN it succeeds and prints its JSON summary of the whole seeded stream
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "pages": 5,
        "posts": 50,
        "published": {"cats": 37, "dogs": 13},
        "stopped_reason": "complete",
        "since_id": "1879000019999114880",
    }
    lines = _framed_log_lines(result.stderr)
    assert sum(line.startswith("REPORT RequestId: ") for line in lines) == 1


def test_unknown_function_is_one_clear_line(runner: CliRunner) -> None:
    # GIVEN a function name the template does not have
    event = event_file("producer_scheduled.json")

    # WHEN it is invoked
    result = run_cli(runner, "invoke", "NoSuchFunction", "-e", str(event))

    # THEN one line names the functions there are, and nothing is printed on stdout
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: no function 'NoSuchFunction' in the template; functions: "
        "ClassifierFunction, ExecutionCloserFunction, FetchImageFunction, ProducerFunction, "
        "StoreResultFunction\n"
    )


def test_event_file_that_is_not_json_is_one_clear_line(runner: CliRunner, tmp_path: Path) -> None:
    # GIVEN an event file that is not JSON
    event = tmp_path / "event.json"
    event.write_text("url=https://pbs.twimg.com/media/Fabc.jpg\n", encoding="utf-8")

    # WHEN it is given to invoke
    result = run_cli(runner, "invoke", "FetchImageFunction", "-e", str(event))

    # THEN the command says so in one line, before starting any cloud
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {event} is not JSON: Expecting value: line 1 column 1 (char 0)\n"
    )


def test_event_file_that_is_not_an_object_is_one_clear_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    # GIVEN an event file holding a JSON array
    event = tmp_path / "event.json"
    event.write_text('["https://pbs.twimg.com/media/Fabc.jpg"]\n', encoding="utf-8")

    # WHEN it is given to invoke
    result = run_cli(runner, "invoke", "FetchImageFunction", "-e", str(event))

    # THEN the command says so in one line, before starting any cloud
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {event} is JSON but not an object; an event is one\n"


def test_event_file_over_lambdas_6_mb_is_refused_on_its_own_bytes(
    runner: CliRunner, tmp_path: Path
) -> None:
    # GIVEN an event file of 6 MB and one byte as written (Lambda counts the bytes a client
    # sends; `aws lambda invoke` sends the file as it is)
    event = tmp_path / "big.json"
    frame = len(b'{"padding": ""}')
    event.write_bytes(b'{"padding": "' + b"x" * (6_291_457 - frame) + b'"}')

    # WHEN it is given to invoke with no cloud running
    result = run_cli(runner, "invoke", "FetchImageFunction", "-e", str(event))

    # THEN Lambda's refusal is one line with the file's size, before any cloud is started
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: RequestEntityTooLargeException: 6291457 byte payload is too large for the "
        "RequestResponse invocation type (limit 6291456 bytes)\n"
    )


def test_missing_event_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    # GIVEN an event path where no file is
    missing = tmp_path / "missing.json"

    # WHEN it is given to invoke
    result = run_cli(runner, "invoke", "FetchImageFunction", "-e", str(missing))

    # THEN click rejects the option with a usage error
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--event' / '-e': File '{missing}' does not exist."
    )


def test_param_that_is_not_key_value_is_a_usage_error(runner: CliRunner) -> None:
    # GIVEN a --param without "="
    event = event_file("producer_scheduled.json")

    # WHEN it is given to invoke
    result = run_cli(
        runner, "invoke", "ProducerFunction", "-e", str(event), "--param", "ScheduleEnabled"
    )

    # THEN it is a usage error naming the option and the value, with the usage line above it
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "Usage: tweetlens invoke [OPTIONS] FUNCTION"
    assert lines[-1] == "Error: Invalid value for --param: 'ScheduleEnabled' is not KEY=VALUE"


SAMPLE_APP = REPO_ROOT / "tests" / "localcloud" / "sample_app"


def test_another_template_is_deployed_as_it_is(runner: CliRunner) -> None:
    # GIVEN the local cloud's own sample application and one of its events
    template = SAMPLE_APP / "template.yaml"
    event = SAMPLE_APP / "events" / "validator_ok.json"

    # WHEN its validator is invoked with --template
    result = run_cli(
        runner, "invoke", "ValidatorFunction", "-e", str(event), "--template", str(template)
    )

    # THEN it answers with the validated item, and its REPORT line closes stderr
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(event.read_text(encoding="utf-8"))
    lines = _framed_log_lines(result.stderr)
    assert sum(line.startswith("REPORT RequestId: ") for line in lines) == 1


def test_param_the_template_does_not_declare_is_one_clear_line(runner: CliRunner) -> None:
    # GIVEN a parameter override the template has no parameter for
    template = SAMPLE_APP / "template.yaml"
    event = SAMPLE_APP / "events" / "validator_ok.json"

    # WHEN a function is invoked with it
    result = run_cli(
        runner,
        "invoke",
        "ValidatorFunction",
        "-e",
        str(event),
        "--template",
        str(template),
        "--param",
        "NoSuchParameter=1",
    )

    # THEN the deployment is refused in one line, as CloudFormation would refuse it
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: parameter overrides not declared by the template: ['NoSuchParameter']\n"
    )


def test_state_file_of_a_stopped_cloud_falls_back_to_a_fresh_one(tmp_path: Path) -> None:
    # GIVEN a state file of this template at an endpoint where nothing listens (an `up` that
    # was killed leaves it behind)
    event = event_file("fetch_image_blocked.json")
    with loopback_port(listening=False) as port:
        state_file = _state_file(tmp_path / "local-cloud.json", port)

        # WHEN a function is invoked
        result = run_cli(
            state_file_runner(state_file), "invoke", "FetchImageFunction", "-e", str(event)
        )

    # THEN a fresh cloud answered with the usual payload and framing
    assert result.exit_code == 1, result.stderr
    assert json.loads(result.stdout)["errorType"] == "BlockedUrl"
    assert (
        sum(line.startswith("REPORT RequestId: ") for line in _framed_log_lines(result.stderr)) == 1
    )


def test_fresh_flag_deploys_even_when_a_cloud_answers(tmp_path: Path) -> None:
    # GIVEN a state file of this template at an endpoint that accepts connections
    event = event_file("fetch_image_blocked.json")
    with loopback_port(listening=True) as port:
        state_file = _state_file(tmp_path / "local-cloud.json", port)

        # WHEN a function is invoked with --fresh
        result = run_cli(
            state_file_runner(state_file),
            "invoke",
            "FetchImageFunction",
            "-e",
            str(event),
            "--fresh",
        )

    # THEN a fresh cloud answered (the listening socket never would)
    assert result.exit_code == 1, result.stderr
    assert json.loads(result.stdout)["errorType"] == "BlockedUrl"
    _framed_log_lines(result.stderr)


def test_fresh_cloud_in_its_own_process_prints_only_the_function_s_logs(tmp_path: Path) -> None:
    # GIVEN no running local cloud, and `tweetlens invoke` run as a command, as in a terminal
    # (the emulator's modules are imported only then, after the command line set the log levels)
    event = event_file("fetch_image_blocked.json")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        STATE_FILE_ENV: str(tmp_path / "no-local-cloud.json"),
    }

    # WHEN a function is invoked
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tweetlens",
            "invoke",
            "FetchImageFunction",
            "-e",
            str(event),
            "--template",
            str(REPO_ROOT / "template.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN stderr holds the function's framed logs and nothing of the local cloud's own
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["errorType"] == "BlockedUrl"
    lines = _framed_log_lines(result.stderr)
    assert not [line for line in lines if '"service":"localcloud"' in line]


def test_fresh_cloud_holds_only_what_the_function_needs() -> None:
    # GIVEN this repo's template, whose fetch function needs its role and the images bucket
    # WHEN invoke's fresh cloud is started for the fetch function
    with fresh_cloud(REPO_ROOT / "template.yaml", "FetchImageFunction", {}) as cloud:
        # THEN the stack holds the function, its role, the bucket and the bucket's policy only
        assert sorted(cloud.resources) == [
            "FetchImageFunction",
            "FetchImageFunctionRole",
            "ImagesBucket",
            "ImagesBucketPolicy",
        ]
        assert sorted(cloud.functions) == ["FetchImageFunction"]


def test_fresh_cloud_in_its_own_process_ends_with_click_s_error_and_status(
    tmp_path: Path,
) -> None:
    # GIVEN `tweetlens invoke` run as a command (it ends without the interpreter's teardown once
    # its cloud is stopped) for a function the template lacks
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        STATE_FILE_ENV: str(tmp_path / "no-local-cloud.json"),
    }
    command = [sys.executable, "-m", "tweetlens", "invoke", "NoSuchFunction"]
    event = ["-e", str(event_file("producer_scheduled.json"))]
    template = ["--template", str(REPO_ROOT / "template.yaml")]

    # WHEN it runs
    result = subprocess.run(
        [*command, *event, *template],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN click's one-line error and exit status 1 still come out whole
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: no function 'NoSuchFunction' in the template; functions: "
        "ClassifierFunction, ExecutionCloserFunction, FetchImageFunction, ProducerFunction, "
        "StoreResultFunction\n"
    )


def test_store_result_sample_reaches_dynamodb_and_finds_no_claim(runner: CliRunner) -> None:
    # GIVEN the Store Result task's input as the state machine passes it (README, Quick invoke)
    event = event_file("store_result_cat_photo.json")

    # WHEN the function is invoked in a fresh cloud, where no execution claimed the image
    result = run_cli(runner, "invoke", "StoreResultFunction", "-e", str(event))

    # THEN the input is accepted and the transaction's claim condition refuses the result:
    # ClaimLost, which the state machine turns into a Duplicate, with one REPORT line
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["errorType"] == "ClaimLost"
    assert payload["errorMessage"] == (
        f"{json.loads(event.read_text(encoding='utf-8'))['execution']} no longer owns the claim; "
        "result not written"
    )
    lines = _framed_log_lines(result.stderr)
    assert sum(line.startswith("REPORT RequestId: ") for line in lines) == 1


def test_closer_sample_of_another_state_machine_closes_nothing(runner: CliRunner) -> None:
    # GIVEN the sample status-change event, whose state machine ARN is no deployed one
    event = event_file("eventbridge_execution_failed.json")
    state_machine = json.loads(event.read_text(encoding="utf-8"))["detail"]["stateMachineArn"]

    # WHEN the closer is invoked with it unchanged, as `sam local invoke` would pass it
    result = run_cli(runner, "invoke", "ExecutionCloserFunction", "-e", str(event))

    # THEN it succeeds, closes nothing, and its log says why
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"closed": []}
    logs = [json.loads(line) for line in _framed_log_lines(result.stderr) if line.startswith("{")]
    told = [log for log in logs if log.get("message", "").startswith("Status change")]
    assert [(log["message"], log["state_machine"]) for log in told] == [
        (
            "Status change needs no dead letter: another state machine's execution",
            state_machine,
        )
    ]
