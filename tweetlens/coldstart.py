"""Cold start: each function's Init Duration against a bare ``import boto3`` plus one client.

A function's init is the import of its handler's module in a fresh execution environment
(what Lambda reports as Init Duration). The floor for any Python function that talks to AWS
is importing boto3 and making one client, so the figure that says whether a function
imports too much eagerly is the ratio of the two, measured in the same local worker, with
the same environment, one after the other. Both are the median of ``runs`` cold starts.
``ratio`` compares the CPU time of the two inits: wall time on a shared machine measures the
neighbours as much as the function (the floor alone varied 0.4 to 1.4 s under load), CPU time
what the imports cost; ``wall_ratio`` compares Init Durations as REPORT prints them.

``measure(cloud)`` returns one ``ColdStartRecord`` per function (the bench calls it);
``tweetlens coldstart`` prints them.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.errors import LocalCloudError
from tweetlens.localcloud.models import FunctionConfig

# The targets of issue 8: 1.3 times the floor, and 1.5 times for the producer, which also
# needs the X API client (tweepy) on its main path.
DEFAULT_LIMIT = 1.3
LIMITS: Mapping[str, float] = {"ProducerFunction": 1.5}
DEFAULT_RUNS = 5

# The floor: what every function that calls AWS pays before its own code runs.
BASELINE_HANDLER_MODULE = "coldstart_baseline"
BASELINE_SOURCE = '''"""The cold-start floor: boto3 imported and one client made, nothing else."""

import boto3

client = boto3.client("sts")


def handler(event, context):
    return None
'''


class ColdStartError(LocalCloudError):
    """A function (or the floor) failed its init, so there is no duration to compare."""


class ColdStartRecord(BaseModel):
    """One function's cold start against the floor, both medians of ``runs`` fresh starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    function: str = Field(description="Logical id of the function in the template.")
    handler: str
    runs: int = Field(ge=1)
    init_ms: float = Field(gt=0, description="Median Init Duration of the function.")
    baseline_ms: float = Field(gt=0, description="Median Init Duration of the floor.")
    init_cpu_ms: float = Field(gt=0, description="Median CPU time of the function's init.")
    baseline_cpu_ms: float = Field(gt=0, description="Median CPU time of the floor's init.")
    ratio: float = Field(gt=0, description="init_cpu_ms / baseline_cpu_ms.")
    wall_ratio: float = Field(gt=0, description="init_ms / baseline_ms.")
    limit: float = Field(gt=0, description="The ratio this function should stay under.")

    @property
    def within_limit(self) -> bool:
        return self.ratio <= self.limit


def _init(cloud: LocalCloud, function: FunctionConfig) -> tuple[float, float]:
    """(wall ms, CPU ms) of one fresh init."""
    measured = cloud.measure_init(function)
    if measured.error is not None:
        raise ColdStartError(
            f"{function.logical_id} ({function.handler}) failed its init: "
            f"{measured.error.error_type}: {measured.error.error_message}"
        )
    return measured.init_ms, measured.init_cpu_ms


def measure(
    cloud: LocalCloud,
    *,
    functions: list[str] | None = None,
    runs: int = DEFAULT_RUNS,
    limits: Mapping[str, float] = LIMITS,
    default_limit: float = DEFAULT_LIMIT,
) -> list[ColdStartRecord]:
    """Cold starts of ``functions`` (logical ids; default every function) of a started cloud.

    For each function the floor is measured beside it, alternating, in a worker with that
    function's own environment, so drift of the machine's speed hits both alike.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    deployed = cloud.functions
    names = sorted(deployed) if functions is None else functions
    unknown = sorted(set(names) - set(deployed))
    if unknown:
        raise ColdStartError(f"no such functions in the template: {unknown}")
    records: list[ColdStartRecord] = []
    with tempfile.TemporaryDirectory(prefix="tweetlens-coldstart-") as workdir:
        Path(workdir, f"{BASELINE_HANDLER_MODULE}.py").write_text(BASELINE_SOURCE, "utf-8")
        for name in names:
            function = deployed[name]
            floor = function.model_copy(
                update={
                    "code_uri": Path(workdir),
                    "handler": f"{BASELINE_HANDLER_MODULE}.handler",
                }
            )
            function_runs = []
            floor_runs = []
            for _ in range(runs):
                function_runs.append(_init(cloud, function))
                floor_runs.append(_init(cloud, floor))
            # Ratios from the figures as reported, so a reader can recompute them.
            init_ms = round(statistics.median(wall for wall, _ in function_runs), 2)
            baseline_ms = round(statistics.median(wall for wall, _ in floor_runs), 2)
            init_cpu_ms = round(statistics.median(cpu for _, cpu in function_runs), 2)
            baseline_cpu_ms = round(statistics.median(cpu for _, cpu in floor_runs), 2)
            records.append(
                ColdStartRecord(
                    function=name,
                    handler=function.handler,
                    runs=runs,
                    init_ms=init_ms,
                    baseline_ms=baseline_ms,
                    init_cpu_ms=init_cpu_ms,
                    baseline_cpu_ms=baseline_cpu_ms,
                    ratio=round(init_cpu_ms / baseline_cpu_ms, 3),
                    wall_ratio=round(init_ms / baseline_ms, 3),
                    limit=limits.get(name, default_limit),
                )
            )
    return records
