"""`tweetlens.coldstart`: the records' structure and arithmetic, never their timings."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.coldstart import (
    DEFAULT_LIMIT,
    ColdStartError,
    ColdStartRecord,
    build_package,
    measure,
)
from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.models import FunctionConfig

# At import: where `marker` comes from, and whether the tooling's pydantic can be found.
PROBE = """
import importlib.util, json
try:
    import marker
    found = marker.__file__
except ImportError:
    found = None
print(json.dumps({"marker": found, "pydantic": importlib.util.find_spec("pydantic") is not None}))

def handler(event, context):
    return None
"""
# A makefile build as SAM runs it: ARTIFACTS_DIR set, the make variables given shown.
MAKEFILE = """
build-Built:
\tcp app.py "$(ARTIFACTS_DIR)/"
\tmkdir "$(ARTIFACTS_DIR)/pkg"
\techo "$(WHEEL_PLATFORM) $(PYTHON312)" > "$(ARTIFACTS_DIR)/pkg/built-for.txt"
\t$(PYTHON312) -m compileall -q --invalidation-mode checked-hash "$(ARTIFACTS_DIR)"

build-Broken:
\t@echo "no wheel for this platform" >&2; exit 3
"""

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False) as started:
        yield started


def test_one_record_per_function_with_its_ratio_and_limit(cloud: LocalCloud) -> None:
    # GIVEN the sample application deployed, and a limit for one of its functions
    first, *others = sorted(cloud.functions)

    # WHEN the cold starts are measured once each
    records = measure(cloud, runs=1, limits={first: 2.5})

    # THEN there is one record per function, in logical-id order, each with its handler
    assert [record.function for record in records] == [first, *others]
    assert [record.handler for record in records] == [
        cloud.functions[name].handler for name in (first, *others)
    ]
    for record in records:
        assert isinstance(record, ColdStartRecord)
        assert record.runs == 1
        assert record.init_ms > 0
        assert record.baseline_ms > 0
        assert record.init_cpu_ms > 0
        assert record.baseline_cpu_ms > 0
        # AND the ratios are the function's init over the floor's (CPU and wall), to 3 places
        assert record.ratio == round(record.init_cpu_ms / record.baseline_cpu_ms, 3)
        assert record.wall_ratio == round(record.init_ms / record.baseline_ms, 3)
        assert record.within_limit is (record.ratio <= record.limit)
    # AND the sample application, built by SAM's Python builder, ran from its CodeUri
    assert [record.package for record in records] == ["source"] * len(records)
    # AND the limit is the one given for that function, the default for the others
    assert [record.limit for record in records] == [2.5] + [DEFAULT_LIMIT] * len(others)


def test_selected_functions_only(cloud: LocalCloud) -> None:
    # GIVEN one function of the sample application
    name = sorted(cloud.functions)[-1]

    # WHEN only it is measured
    records = measure(cloud, functions=[name], runs=1)

    # THEN there is exactly its record
    assert [record.function for record in records] == [name]


def test_unknown_function_is_refused(cloud: LocalCloud) -> None:
    # GIVEN a logical id the template does not have
    # WHEN it is measured
    # THEN the error names it
    with pytest.raises(ColdStartError, match=r"no such functions in the template: \['Nope'\]"):
        measure(cloud, functions=["Nope"], runs=1)


def test_runs_must_be_at_least_one(cloud: LocalCloud) -> None:
    # GIVEN zero runs
    # WHEN measured
    # THEN it is refused
    with pytest.raises(ValueError, match="runs must be at least 1"):
        measure(cloud, runs=0)


def test_record_is_json_ready() -> None:
    # GIVEN a record
    record = ColdStartRecord(
        function="F",
        handler="f.handler",
        package="build",
        runs=3,
        init_ms=120.0,
        baseline_ms=100.0,
        init_cpu_ms=110.0,
        baseline_cpu_ms=100.0,
        ratio=1.1,
        wall_ratio=1.2,
        limit=1.3,
    )

    # WHEN it is dumped for the bench's JSON
    dumped = record.model_dump(mode="json")

    # THEN every field is there, as given
    assert dumped == {
        "function": "F",
        "handler": "f.handler",
        "package": "build",
        "runs": 3,
        "init_ms": 120.0,
        "baseline_ms": 100.0,
        "init_cpu_ms": 110.0,
        "baseline_cpu_ms": 100.0,
        "ratio": 1.1,
        "wall_ratio": 1.2,
        "limit": 1.3,
    }
    assert record.within_limit is True


def _probe(cloud: LocalCloud, code: Path) -> FunctionConfig:
    (code / "app.py").write_text(PROBE, "utf-8")
    first = cloud.functions[sorted(cloud.functions)[0]]
    return first.model_copy(update={"code_uri": code, "handler": "app.handler"})


def _probe_output(logs: str) -> object:
    (line,) = [line for line in logs.splitlines() if line.startswith("{")]
    return json.loads(line)


def test_a_worker_given_site_packages_sees_them_and_not_the_tooling(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN a handler module that reports where its imports come from, and a folder of packages
    code, site = tmp_path / "code", tmp_path / "site"
    code.mkdir()
    site.mkdir()
    (site / "marker.py").write_text("", "utf-8")
    function = _probe(cloud, code)

    # WHEN it cold-starts with that folder as the runtime's packages
    measured = cloud.measure_init(function, site_packages=site)

    # THEN it imports from the folder and cannot find the tooling's own packages
    assert measured.error is None
    assert _probe_output(measured.logs) == {"marker": str(site / "marker.py"), "pydantic": False}


def test_a_worker_without_site_packages_shares_the_tooling_environment(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN the same handler module
    code = tmp_path / "code"
    code.mkdir()
    function = _probe(cloud, code)

    # WHEN it cold-starts as every invocation's worker does
    measured = cloud.measure_init(function)

    # THEN it sees the tooling's packages (pydantic), and no folder of its own
    assert measured.error is None
    assert _probe_output(measured.logs) == {"marker": None, "pydantic": True}


def _makefile_function(cloud: LocalCloud, tmp_path: Path, logical_id: str) -> FunctionConfig:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Makefile").write_text(MAKEFILE, "utf-8")
    (source / "app.py").write_text("VALUE = 1\n", "utf-8")
    first = cloud.functions[sorted(cloud.functions)[0]]
    return first.model_copy(update={"logical_id": logical_id, "code_uri": source})


def _template(logical_id: str, metadata: dict[str, str]) -> dict[str, object]:
    return {"Resources": {logical_id: {"Type": "AWS::Serverless::Function", "Metadata": metadata}}}


def test_a_makefile_function_is_built_by_its_target_for_this_machine_read_only(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN a function the template builds with its Makefile
    function = _makefile_function(cloud, tmp_path, "Built")
    work = tmp_path / "work"
    work.mkdir()

    # WHEN its package is built for the cold starts
    package = build_package(_template("Built", {"BuildMethod": "makefile"}), function, work)

    # THEN its target built it, for this machine's platform and with this interpreter
    assert package is not None
    assert (package / "pkg" / "built-for.txt").read_text("utf-8") == f"native {sys.executable}\n"
    # AND with what the target compiled
    assert sorted(path.relative_to(package).as_posix() for path in package.rglob("*")) == [
        "__pycache__",
        f"__pycache__/app.{sys.implementation.cache_tag}.pyc",
        "app.py",
        "pkg",
        "pkg/built-for.txt",
    ]
    # AND read-only, as /var/task is
    modes = {
        path.relative_to(package).as_posix(): path.stat().st_mode & 0o777
        for path in [package, *package.rglob("*")]
    }
    assert modes == {
        ".": 0o555,
        "__pycache__": 0o555,
        f"__pycache__/app.{sys.implementation.cache_tag}.pyc": 0o444,
        "app.py": 0o444,
        "pkg": 0o555,
        "pkg/built-for.txt": 0o444,
    }


def test_a_function_without_a_makefile_build_is_not_built(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN a function SAM builds with its Python builder (no BuildMethod)
    function = _makefile_function(cloud, tmp_path, "Built")

    # WHEN its package is asked for
    package = build_package(_template("Built", {}), function, tmp_path)

    # THEN there is none: it cold-starts from its CodeUri
    assert package is None


def test_a_failing_build_is_reported_with_its_output(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN a function whose make target fails
    function = _makefile_function(cloud, tmp_path, "Broken")

    # WHEN its package is built
    # THEN the error names the function and carries what make said
    with pytest.raises(ColdStartError, match=r"(?s)building Broken failed:.*no wheel for this"):
        build_package(_template("Broken", {"BuildMethod": "makefile"}), function, tmp_path)
