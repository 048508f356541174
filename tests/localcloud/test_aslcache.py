"""``aslcache``: one parsed program per definition and one parse per JSONPath, shared by
executions that still keep their own state."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud import LocalCloud, aslcache
from tweetlens.localcloud._patching import PatchSet

DEFINITION = json.dumps(
    {
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "Parameters": {"url.$": "$.message.url"},
                "ResultPath": "$.shaped",
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
)


def test_a_parsed_program_has_every_heap_key_drawn() -> None:
    # GIVEN / WHEN a definition is parsed for sharing
    program = aslcache.parse_program(DEFINITION)

    # THEN no component is left to draw its heap key lazily (a race between executions)
    components = list(aslcache._components(program))
    assert len(components) > 5
    assert all(
        component._EvalComponent__heap_key is not None  # type: ignore[attr-defined]
        for component in components
    )


def test_install_shares_programs_and_paths_and_restore_undoes_it() -> None:
    # GIVEN the cache installed
    patches = PatchSet()
    originals = (ExecutionWorker._get_evaluation_entrypoint, json_path.parse, result_path.parse)
    aslcache.install(patches)
    try:
        # WHEN the same definition and the same path are asked for twice
        first = json_path.parse("$.message.url")
        second = json_path.parse("$.message.url")
        result_first = result_path.parse("$.shaped")

        # THEN each was parsed once
        assert first is second
        assert result_path.parse("$.shaped") is result_first
        assert [match.value for match in first.find({"message": {"url": "u"}})] == ["u"]
    finally:
        patches.restore()
    # AND moto's own parsers are back
    assert (
        ExecutionWorker._get_evaluation_entrypoint,
        json_path.parse,
        result_path.parse,
    ) == originals


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # The gate machine's 2 s TimeoutSeconds is there for the tests of timed-out executions.
    # Here twenty executions start at once and only their state is checked: with 10 x the
    # timeout none of them depends on how fast the machine is (on a core 3 x slower than the
    # usual, under the parallel test run, one of the twenty once ended TIMED_OUT).
    with LocalCloud(
        SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False, execution_timeout_scale=10
    ) as local_cloud:
        yield local_cloud


@pytest.mark.integration
def test_executions_sharing_a_program_keep_their_own_state(cloud: LocalCloud) -> None:
    # GIVEN twenty executions of one machine started at once, each with its own name
    sfn = cloud.client("stepfunctions")
    names = [f"shared-{n}" for n in range(20)]
    arns: list[str] = []
    lock = threading.Lock()

    def start(name: str) -> None:
        arn = sfn.start_execution(
            stateMachineArn=cloud.resources["GateStateMachine"],
            name=name,
            input=json.dumps({"mode": "pass"}),
        )["executionArn"]
        with lock:
            arns.append(arn)

    threads = [threading.Thread(target=start, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # WHEN they have all run
    assert cloud.wait_until_idle(timeout=60).idle

    # THEN each succeeded and recorded its own execution's name
    statuses = {sfn.describe_execution(executionArn=arn)["status"] for arn in arns}
    assert statuses == {"SUCCEEDED"}
    recorded = cloud.client("dynamodb").scan(TableName=cloud.resources["ItemsTable"])["Items"]
    gate_items = sorted(item["pk"]["S"] for item in recorded if item["pk"]["S"].startswith("gate-"))
    assert gate_items == sorted(f"gate-{name}" for name in names)
