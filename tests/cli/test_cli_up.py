"""`tweetlens up`: a local cloud other terminals can inspect, stopped cleanly with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.cli_testkit import REPO_ROOT, run_cli, state_file_runner
from tweetlens.stack import STATE_FILE_ENV

pytestmark = pytest.mark.integration

START_SECONDS = 90.0
STOP_SECONDS = 30.0


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {path} after {START_SECONDS} s"
        time.sleep(0.2)


def _invoke_in_a_process(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    event = REPO_ROOT / "events" / "fetch_image_blocked.json"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tweetlens",
            "invoke",
            "FetchImageFunction",
            "-e",
            str(event),
            # The template `up` runs: the running cloud serves only a call for the same one.
            "--template",
            str(REPO_ROOT / "template.yaml"),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
        check=False,
    )


def test_up_serves_other_terminals_until_ctrl_c(tmp_path: Path) -> None:
    # GIVEN `tweetlens up` started in its own process, as in a terminal
    state_file = tmp_path / "state" / "local-cloud.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        STATE_FILE_ENV: str(state_file),
        # A terminal of 80 columns, the width rich assumes when stdout is no terminal.
        "COLUMNS": "80",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tweetlens",
            "up",
            "--template",
            str(REPO_ROOT / "template.yaml"),
            "--time-scale",
            "0.05",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(state_file, process)
        state = json.loads(state_file.read_text(encoding="utf-8"))

        # WHEN another terminal asks for results
        result = run_cli(state_file_runner(state_file), "results")

        # THEN it reaches the running cloud, where the first schedule has not fired yet
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "0 image(s)"
        assert state["endpoint_url"].startswith("http://127.0.0.1:")

        # WHEN another terminal invokes a function twice, each time in a process of its own
        invoked = [_invoke_in_a_process(env, tmp_path) for _ in range(2)]

        # THEN the running cloud answered both: the second found its worker warm (no Init
        # Duration), which a fresh cloud for each call never would
        for call in invoked:
            assert call.returncode == 1, call.stderr
            assert json.loads(call.stdout)["errorType"] == "BlockedUrl"
            lines = call.stderr.splitlines()
            assert lines[0].startswith("START RequestId: "), lines[0]
            assert lines[-1].startswith("REPORT RequestId: ")
        assert "Init Duration" not in invoked[1].stderr.splitlines()[-1]

        # WHEN Ctrl-C is pressed
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=STOP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    # THEN it stops cleanly, having shown what it ran, and the state file is gone
    assert process.returncode == 0, stderr
    assert f"Local cloud at {state['endpoint_url']}" in stdout
    assert "Ctrl-C to stop." in stdout
    assert not state_file.exists()
    # AND at 80 columns every resource's physical id (queue URLs of 90 characters and more
    # among them) is printed whole on its own line, to be copied, and the state file is named
    lines = stdout.splitlines()
    width = max(len(logical_id) for logical_id in state["resources"])
    for logical_id, physical in state["resources"].items():
        assert f"  {logical_id:<{width}}  {physical}".rstrip() in lines
    assert max(len(url) for url in state["resources"].values() if url.startswith("http")) > 80
    assert f"Endpoint and resources, as JSON: {state_file}" in lines
