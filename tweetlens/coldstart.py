"""Cold start: each function's Init Duration against a bare ``import boto3`` plus one client.

A function's init is the import of its handler's module in a fresh execution environment
(what Lambda reports as Init Duration). The floor for any Python function that talks to AWS
is importing boto3 and making one client, so the figure that says whether a function
imports too much eagerly is the ratio of the two, measured in the same local worker, with
the same environment, one after the other. Both are the median of ``runs`` cold starts.
``ratio`` compares the CPU time of the two inits: wall time on a shared machine measures the
neighbours as much as the function (the floor alone varied 0.4 to 1.4 s under load), CPU time
what the imports cost; ``wall_ratio`` compares Init Durations as REPORT prints them.

What is loaded is what Lambda would load. A function built with ``BuildMethod: makefile`` is
built by its own make target, as ``sam build`` runs it, for this machine's platform
(``WHEEL_PLATFORM=native``): its code and dependencies, with the bytecode the build ships and
nothing else (no ``__pycache__`` a test run left in the source tree). It is started from that
package made read-only, as /var/task is, in a runtime that has only the standard library and
boto3 with its dependencies (what Lambda's Python runtime provides), not the tooling's
packages: the tooling's environment holds optional extras boto3 loads when present (awscrt,
pyOpenSSL), which Lambda's runtime does not have. The floor runs in the same runtime. Any other
function runs from its CodeUri in the tooling's environment (``package="source"``).

``measure(cloud)`` returns one ``ColdStartRecord`` per function; ``tweetlens coldstart``
prints them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.errors import LocalCloudError
from tweetlens.localcloud.models import FunctionConfig
from tweetlens.localcloud.packaging import load_template

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


# What Lambda's Python runtime provides beside a function's package: "the AWS SDK for Python
# (Boto3) and its dependencies" (Lambda developer guide), at the tooling's boto3 version.
RUNTIME_DISTRIBUTION = "boto3"
# What SAM copies before it runs a makefile build in the copy (CustomMakeBuilder's excludes).
_NOT_COPIED = shutil.ignore_patterns(".aws-sam", ".git")
# A build's make target, for this machine: its wheels and its bytecode for this interpreter.
_NATIVE_BUILD = ("WHEEL_PLATFORM=native", f"PYTHON312={sys.executable}")

PackageKind = Literal["build", "source"]


class ColdStartError(LocalCloudError):
    """A function (or the floor) failed its init, so there is no duration to compare."""


class ColdStartRecord(BaseModel):
    """One function's cold start against the floor, both medians of ``runs`` fresh starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    function: str = Field(description="Logical id of the function in the template.")
    handler: str
    package: PackageKind = Field(
        description=(
            "build: the package its make target builds, in a runtime with boto3 only; "
            "source: its CodeUri, in the tooling's environment."
        )
    )
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


def _init(
    cloud: LocalCloud, function: FunctionConfig, site_packages: Path | None
) -> tuple[float, float]:
    """(wall ms, CPU ms) of one fresh init."""
    measured = cloud.measure_init(function, site_packages=site_packages)
    if measured.error is not None:
        raise ColdStartError(
            f"{function.logical_id} ({function.handler}) failed its init: "
            f"{measured.error.error_type}: {measured.error.error_message}"
        )
    return measured.init_ms, measured.init_cpu_ms


def _run(command: list[str], what: str, **kwargs: Any) -> None:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed programs, arguments from the template
            command, capture_output=True, text=True, check=False, **kwargs
        )
    except OSError as exc:
        raise ColdStartError(f"{what}: {exc}") from exc
    if completed.returncode != 0:
        raise ColdStartError(f"{what} failed:\n{completed.stdout}{completed.stderr}".rstrip())


def _make_read_only(root: Path) -> None:
    """As /var/task is: nothing can be written there, bytecode included."""
    for path in sorted(root.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    root.chmod(0o555)


def build_package(
    template: Mapping[str, Any], function: FunctionConfig, workdir: Path
) -> Path | None:
    """The function's package as its make target builds it, for this machine, read-only.

    None when the template does not build the function with a makefile. The target runs in a
    copy of the CodeUri with ARTIFACTS_DIR set, as ``sam build`` runs it.
    """
    resource = template["Resources"].get(function.logical_id, {})
    if (resource.get("Metadata") or {}).get("BuildMethod") != "makefile":
        return None
    make = shutil.which("make")
    if make is None:
        raise ColdStartError(f"{function.logical_id} is built with make, which is not on PATH")
    source = workdir / f"{function.logical_id}-source"
    shutil.copytree(function.code_uri, source, ignore=_NOT_COPIED)
    package = workdir / f"{function.logical_id}-package"
    package.mkdir()
    _run(
        [
            make,
            "--makefile",
            str(source / "Makefile"),
            f"build-{function.logical_id}",
            *_NATIVE_BUILD,
        ],
        f"building {function.logical_id}",
        cwd=source,
        env={**os.environ, "ARTIFACTS_DIR": str(package)},
    )
    shutil.rmtree(source)
    _make_read_only(package)
    return package


def runtime_site_packages(workdir: Path) -> Path:
    """boto3 and its dependencies, installed (and compiled, as pip does) into a folder."""
    target = workdir / "runtime"
    version = metadata.version(RUNTIME_DISTRIBUTION)
    _run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts"),
            *("--target", str(target), f"{RUNTIME_DISTRIBUTION}=={version}"),
        ],
        f"installing {RUNTIME_DISTRIBUTION} {version} as Lambda's runtime provides it",
    )
    _make_read_only(target)
    return target


def measure(
    cloud: LocalCloud,
    *,
    functions: list[str] | None = None,
    runs: int = DEFAULT_RUNS,
    limits: Mapping[str, float] = LIMITS,
    default_limit: float = DEFAULT_LIMIT,
    runtime_packages: Path | None = None,
) -> list[ColdStartRecord]:
    """Cold starts of ``functions`` (logical ids; default every function) of a started cloud.

    For each function the floor is measured beside it, alternating, in a worker with that
    function's own environment, so drift of the machine's speed hits both alike.
    ``runtime_packages``: what the runtime provides beside a built package; by default boto3
    and its dependencies, installed when a function is built (``runtime_site_packages``).
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    deployed = cloud.functions
    names = sorted(deployed) if functions is None else functions
    unknown = sorted(set(names) - set(deployed))
    if unknown:
        raise ColdStartError(f"no such functions in the template: {unknown}")
    template = load_template(cloud.template)
    records: list[ColdStartRecord] = []
    with tempfile.TemporaryDirectory(prefix="tweetlens-coldstart-") as work:
        workdir = Path(work)
        floor_dir = workdir / "floor"
        floor_dir.mkdir()
        (floor_dir / f"{BASELINE_HANDLER_MODULE}.py").write_text(BASELINE_SOURCE, "utf-8")
        _make_read_only(floor_dir)
        site_packages = runtime_packages
        for name in names:
            function = deployed[name]
            package = build_package(template, function, workdir)
            kind: PackageKind = "source"
            isolation: Path | None = None
            if package is not None:
                if site_packages is None:
                    site_packages = runtime_site_packages(workdir)
                function = function.model_copy(update={"code_uri": package})
                kind, isolation = "build", site_packages
            # The floor runs beside it in the same runtime, with the same environment.
            floor = function.model_copy(
                update={"code_uri": floor_dir, "handler": f"{BASELINE_HANDLER_MODULE}.handler"}
            )
            function_runs = []
            floor_runs = []
            for _ in range(runs):
                function_runs.append(_init(cloud, function, isolation))
                floor_runs.append(_init(cloud, floor, isolation))
            # Ratios from the figures as reported, so a reader can recompute them.
            init_ms = round(statistics.median(wall for wall, _ in function_runs), 2)
            baseline_ms = round(statistics.median(wall for wall, _ in floor_runs), 2)
            init_cpu_ms = round(statistics.median(cpu for _, cpu in function_runs), 2)
            baseline_cpu_ms = round(statistics.median(cpu for _, cpu in floor_runs), 2)
            records.append(
                ColdStartRecord(
                    function=name,
                    handler=function.handler,
                    package=kind,
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
