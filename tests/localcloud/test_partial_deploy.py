"""A deploy for one function (``only_function``) gives it what a full deploy gives it.

Pinned for every function of this repository's template against one full deploy: the same
environment (names, URLs and ARNs equal but for CloudFormation's random suffix), and every
resource that environment names exists in the partial stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tweetlens.localcloud import LocalCloud

REPO_TEMPLATE = Path(__file__).resolve().parent.parent.parent / "template.yaml"
FUNCTIONS = (
    "ClassifierFunction",
    "ExecutionCloserFunction",
    "FetchImageFunction",
    "ProducerFunction",
    "StoreResultFunction",
)
# Values that differ between deploys only by what CloudFormation draws at random.
PARAMETERS = {"PostSource": "replay", "ReplayUri": "/tmp/replay.json"}
# CloudFormation's generated names end in 12 random letters and digits (lower case in buckets);
# the suffix is last, so a 12-letter logical id followed by "-" is not one.
_RANDOM_SUFFIX = re.compile(r"-[0-9A-Za-z]{12}(?=$|[^0-9A-Za-z-])")

# The generated resources each function's environment names (the fetch function's none: its
# policy names the bucket).
ENVIRONMENT_NAMES = {
    "ClassifierFunction": [
        "CatsDeadLetterQueue",
        "CatsQueue",
        "ClassifyImageStateMachine",
        "DogsDeadLetterQueue",
        "DogsQueue",
        "ResultsTable",
        "WorkflowDeadLetterQueue",
    ],
    "ExecutionCloserFunction": [
        "ClassifyImageStateMachine",
        "ResultsTable",
        "WorkflowDeadLetterQueue",
    ],
    "FetchImageFunction": [],
    "ProducerFunction": ["CatsQueue", "CheckpointsTable", "DogsQueue", "ProducerDeadLetterQueue"],
    "StoreResultFunction": ["ResultsTable"],
}

pytestmark = pytest.mark.integration


def _normalised(value: str) -> str:
    return _RANDOM_SUFFIX.sub("-<random>", value)


@dataclass(frozen=True)
class Deployed:
    environment: dict[str, str]
    resources: dict[str, str]
    functions: frozenset[str]


def _deploy(only_function: str | None) -> dict[str, Deployed]:
    with LocalCloud(
        REPO_TEMPLATE,
        parameter_overrides=PARAMETERS,
        run_schedules=False,
        run_pollers=False,
        only_function=only_function,
    ) as cloud:
        return {
            logical_id: Deployed(
                environment=dict(function.environment),
                resources=dict(cloud.resources),
                functions=frozenset(cloud.functions),
            )
            for logical_id, function in cloud.functions.items()
        }


@pytest.fixture(scope="module")
def full() -> dict[str, Deployed]:
    return _deploy(None)


@pytest.fixture(scope="module")
def partial() -> dict[str, Deployed]:
    return {function: _deploy(function)[function] for function in FUNCTIONS}


def test_the_full_deploy_has_every_function(full: dict[str, Deployed]) -> None:
    # GIVEN the whole template deployed
    # THEN every function the partial deploys are compared for is there
    assert sorted(full) == list(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_environment_equals_the_full_deploy_s(
    function: str, full: dict[str, Deployed], partial: dict[str, Deployed]
) -> None:
    # GIVEN the function deployed alone and within the whole template
    alone, whole = partial[function], full[function]
    # THEN its environment has the same variables, resolving to the same names, URLs and ARNs
    assert sorted(alone.environment) == sorted(whole.environment)
    assert {key: _normalised(value) for key, value in alone.environment.items()} == {
        key: _normalised(value) for key, value in whole.environment.items()
    }
    # AND the comparison compared resolved values: no intrinsic was left unresolved
    assert not [value for value in alone.environment.values() if "{" in value and "Ref" in value]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_resource_the_environment_names_is_deployed(
    function: str, full: dict[str, Deployed], partial: dict[str, Deployed]
) -> None:
    # GIVEN the resources of the full deploy, by the name pattern of their physical ids
    names = {
        logical_id: _normalised(physical_id.rstrip("/").split("/")[-1].split(":")[-1])
        for logical_id, physical_id in full[function].resources.items()
    }
    named = {
        logical_id
        for logical_id, name in names.items()
        if "<random>" in name
        for value in full[function].environment.values()
        if name in _normalised(value)
    }
    # WHEN the function is deployed alone
    alone = partial[function]
    # THEN every resource its environment names is in its stack (no dangling name or URL)
    assert sorted(named) == ENVIRONMENT_NAMES[function]
    assert named <= set(alone.resources)
    # AND the partial stack is smaller than the whole one
    assert len(alone.resources) < len(full[function].resources)
    assert function in alone.functions
