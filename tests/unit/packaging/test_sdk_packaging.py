"""The functions ship one supported boto3 and botocore pair, the one the tests run.

aws-xray-sdk (Powertools' tracer) requires botocore, so pip always puts a botocore in the
package, where it shadows the runtime's; boto3 must come with it, at a version that supports it.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[3]
REQUIREMENTS = REPO / "functions" / "requirements.txt"
BUILD = REPO / ".aws-sam" / "build"
FUNCTIONS = (
    "ProducerFunction",
    "ClassifierFunction",
    "FetchImageFunction",
    "StoreResultFunction",
    "ExecutionCloserFunction",
)


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins[requirement.name] = specifier.version
    return pins


def _shipped(package: Path) -> dict[str, importlib.metadata.Distribution]:
    return {
        dist.metadata["Name"].lower(): dist
        for dist in importlib.metadata.distributions(path=[str(package)])
    }


def test_the_functions_pin_the_boto3_the_tooling_pins() -> None:
    # GIVEN the functions' requirements and the project's dependencies
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]

    # WHEN their boto3 pins are read
    functions = _pins(REQUIREMENTS.read_text().splitlines())
    tooling = _pins([line for line in project if line.startswith("boto3")])

    # THEN they are one version, and botocore is pinned beside it
    assert functions["boto3"] == tooling["boto3"]
    assert "botocore" in functions


@pytest.mark.skipif(
    not all((BUILD / name).is_dir() for name in FUNCTIONS),
    reason="no sam build output: make build (make test runs it)",
)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_package_carries_a_boto3_that_supports_its_botocore(function: str) -> None:
    # GIVEN a function's package as `sam build` left it
    shipped = _shipped(BUILD / function)
    pins = _pins(REQUIREMENTS.read_text().splitlines())

    # WHEN its boto3 and botocore are read, with boto3's own requirement on botocore
    boto3, botocore = shipped["boto3"], shipped["botocore"]
    # (its other botocore line is for the optional crt extra)
    (needs,) = [
        requirement
        for requirement in map(Requirement, boto3.requires or [])
        if requirement.name == "botocore" and requirement.marker is None
    ]

    # THEN both are the pinned versions, and boto3 supports that botocore
    assert (boto3.version, botocore.version) == (pins["boto3"], pins["botocore"])
    assert needs.specifier.contains(botocore.version)
