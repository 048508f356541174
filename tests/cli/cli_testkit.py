"""Helpers of the CLI tests: a runner that keeps stderr apart, and readers of rich tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

import tweetlens_naming as naming
from tweetlens.cli import cli
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import STATE_FILE_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EVENTS_DIR = REPO_ROOT / "events"
# Wide enough that rich never wraps a table row: each row is one line the tests can split.
TERMINAL_COLUMNS = "250"
SETTLE_SECONDS = 90.0


def event_file(name: str) -> Path:
    """A sample event of events/, the file `tweetlens invoke -e` and `sam local invoke` read."""
    path = EVENTS_DIR / name
    assert path.is_file(), path
    return path


def make_runner(**env: str | None) -> CliRunner:
    # click 8.1 mixes stderr into stdout unless told not to (8.2 dropped the flag and always
    # keeps them apart): the tests check what goes where.
    return CliRunner(mix_stderr=False, env={"COLUMNS": TERMINAL_COLUMNS, **env})


def state_file_runner(state_file: Path, **env: str | None) -> CliRunner:
    """A runner whose `results`, `trace` and `dlq` look for the local cloud at `state_file`."""
    return make_runner(**{STATE_FILE_ENV: str(state_file), **env})


def run_cli(runner: CliRunner, *args: str, stdin: str | None = None) -> Result:
    """Run `tweetlens ARGS` in-process, as the console script names itself."""
    return runner.invoke(cli, list(args), input=stdin, prog_name="tweetlens")


def execution_name(url: str, sequence: int = 1) -> str:
    """The contract's execution name: sha256(url) in hex, a dash, the attempt's sequence."""
    return naming.execution_name(url, sequence)


def _cells(line: str, border: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip(border).split(border)]


def table_header(output: str) -> list[str]:
    """The column names of the rich table in `output`."""
    headers = [_cells(line, "┃") for line in output.splitlines() if line.startswith("┃")]
    assert len(headers) == 1, output
    return headers[0]


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table (one line each at TERMINAL_COLUMNS), cells stripped."""
    return [_cells(line, "│") for line in output.splitlines() if line.startswith("│")]


@dataclass
class RunningStack:
    """The repo's template on a started local pipeline, after the producer's posts settled."""

    pipeline: LocalPipeline
    state_file: Path

    def client(self, service: str) -> Any:
        return self.pipeline.cloud.client(service)

    def resource(self, logical_id: str) -> str:
        return self.pipeline.cloud.resources[logical_id]

    def fault_url(self, fault: str) -> str:
        return self.pipeline.images.fault_url(fault)

    def media_url(self, name: str) -> str:
        return self.pipeline.images.media_url(name)

    def flaky_url(self) -> str:
        """The demo stream's one flaky photo URL, posted on both routes (its name is seeded)."""
        assert self.pipeline.recording is not None
        urls = {
            media.url
            for page in self.pipeline.recording.pages
            for media in (page.body.includes.media if page.body.includes else [])
            if media.url and "/faults/flaky-" in media.url
        }
        assert len(urls) == 1, urls
        return urls.pop()

    def runner(self, **env: str | None) -> CliRunner:
        """A runner that finds this stack, as other terminals find the one of `tweetlens up`."""
        return state_file_runner(self.state_file, **env)

    def settle(self) -> None:
        status = self.pipeline.cloud.wait_until_idle(timeout=SETTLE_SECONDS)
        assert status.idle, status
