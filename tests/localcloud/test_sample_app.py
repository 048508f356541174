"""The sample application deployed and driven end to end through ``LocalCloud``."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.localcloud.conftest import SAMPLE_APP, SAMPLE_TEMPLATE, load_event
from tweetlens.localcloud import IdleStatus, LocalCloud, UnknownResourceError
from tweetlens.localcloud.labelers import LabelerError
from tweetlens.localcloud.rekognition import LabelRequest

pytestmark = pytest.mark.integration

NOT_AN_IMAGE = b"not an image"


class ByteSizeLabeler:
    """Deterministic test labeler: one label whose confidence depends on the image size."""

    def detect_labels(
        self, image: bytes, *, max_labels: int, min_confidence: float
    ) -> list[dict[str, Any]]:
        if image == NOT_AN_IMAGE:
            raise LabelerError("InvalidImageFormatException", "Request has invalid image format")
        return [
            {
                "Name": "Blob",
                "Confidence": float(50 + len(image) % 50),
                "Instances": [],
                "Parents": [],
                "Aliases": [],
                "Categories": [],
            }
        ][:max_labels]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        SAMPLE_TEMPLATE,
        labeler=ByteSizeLabeler(),
        time_scale=0.01,
        run_schedules=False,
        extra_env={"EXTRA_SETTING": "from-test"},
    ) as local_cloud:
        yield local_cloud


def _items(cloud: LocalCloud, prefix: str) -> dict[str, dict[str, Any]]:
    items = cloud.client("dynamodb").scan(TableName=cloud.resources["ItemsTable"])["Items"]
    return {item["pk"]["S"]: item for item in items if item["pk"]["S"].startswith(prefix)}


def _drain(cloud: LocalCloud, queue_logical_id: str) -> list[str]:
    sqs = cloud.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=cloud.resources[queue_logical_id], MaxNumberOfMessages=10
    ).get("Messages", [])
    for message in messages:
        sqs.delete_message(
            QueueUrl=cloud.resources[queue_logical_id], ReceiptHandle=message["ReceiptHandle"]
        )
    return sorted(message["Body"] for message in messages)


def test_deploy_reads_back_functions_mappings_and_machines(cloud: LocalCloud) -> None:
    # GIVEN the deployed sample application
    # WHEN its configuration is read
    worker = cloud.functions["WorkerFunction"]
    inspector = cloud.functions["InspectorFunction"]
    [mapping] = cloud.event_source_mappings
    machine = cloud.state_machines["RouterStateMachine"]
    # THEN env references are resolved against the stack and settings come from the template
    assert worker.environment == {"STAGE": "prod", "ITEMS_TABLE": cloud.resources["ItemsTable"]}
    assert (worker.timeout, worker.memory_size, worker.handler) == (
        3,
        256,
        "worker.app.lambda_handler",
    )
    assert (inspector.timeout, inspector.memory_size) == (5, 512)
    assert cloud.functions["SleeperFunction"].reserved_concurrency == 2
    assert worker.code_uri == SAMPLE_APP / "functions"
    assert mapping.function_name == worker.name
    assert (mapping.batch_size, mapping.maximum_batching_window_seconds) == (5, 1)
    assert (mapping.report_batch_item_failures, mapping.maximum_concurrency) == (True, 2)
    assert machine.arn == cloud.outputs["RouterStateMachineArn"]
    assert machine.type == "STANDARD"
    assert f'"FunctionName": "{cloud.functions["ValidatorFunction"].arn}"' in machine.definition
    assert '"NumericGreaterThanEquals": 100' in machine.definition
    assert cloud.schedules["CheckerFunctionEveryMinute"].schedule_expression == "rate(1 minute)"
    assert cloud.schedules["CheckerFunctionEveryMinute"].enabled is True


def test_resources_moto_skips_are_created_by_the_local_cloud(cloud: LocalCloud) -> None:
    # GIVEN the deployed sample application with an alarm, a subscription and a queue policy
    # WHEN the services are asked for them
    alarms = cloud.client("cloudwatch").describe_alarms(
        AlarmNames=[cloud.resources["DeadLetterAlarm"]]
    )["MetricAlarms"]
    subscription = cloud.client("sns").get_subscription_attributes(
        SubscriptionArn=cloud.resources["AlarmTopicSubscription"]
    )["Attributes"]
    policy = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.resources["AlarmTopicQueue"], AttributeNames=["Policy"]
    )["Attributes"]["Policy"]
    # THEN they exist with the template's properties resolved
    assert [(a["MetricName"], a["Threshold"], a["AlarmActions"]) for a in alarms] == [
        ("ApproximateNumberOfMessagesVisible", 0.0, [cloud.resources["AlarmTopic"]])
    ]
    assert (subscription["Protocol"], subscription["RawMessageDelivery"]) == ("sqs", "true")
    assert json.loads(policy)["Statement"][0]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": cloud.resources["AlarmTopic"]}
    }


def test_scheduled_checker_runs_the_branching_state_machine(cloud: LocalCloud) -> None:
    # GIVEN the checker's schedule, whose input holds a small, a big and a negative value
    started = time.monotonic()
    # WHEN it fires and the cloud settles
    result = cloud.fire_schedule("CheckerFunction")
    status = cloud.wait_until_idle(timeout=60)
    # THEN each value took its branch; the 30 s Wait was scaled down; the named error was caught
    assert result.payload == {"started": 3}
    assert status.idle is True
    assert time.monotonic() - started < 20
    assert _items(cloud, "scheduled-") == {
        "scheduled-0": {
            "pk": {"S": "scheduled-0"},
            "size": {"S": "SMALL"},
            "value": {"N": "3"},
            "execution": {"S": "scheduled-0"},
        },
        "scheduled-1": {"pk": {"S": "scheduled-1"}, "size": {"S": "BIG"}, "value": {"N": "250"}},
        "scheduled-2": {
            "pk": {"S": "scheduled-2"},
            "size": {"S": "REJECTED"},
            "error": {"S": "NegativeValue"},
        },
    }
    executions = cloud.client("stepfunctions").list_executions(
        stateMachineArn=cloud.resources["RouterStateMachine"]
    )["executions"]
    assert sorted(
        (e["name"], e["status"]) for e in executions if e["name"].startswith("scheduled")
    ) == [
        ("scheduled-0", "SUCCEEDED"),
        ("scheduled-1", "SUCCEEDED"),
        ("scheduled-2", "SUCCEEDED"),
    ]


def test_lambda_invoke_api_runs_the_handler(cloud: LocalCloud) -> None:
    # GIVEN the validator function
    client = cloud.client("lambda")
    name = cloud.functions["ValidatorFunction"].name
    # WHEN it is invoked through the Lambda API with a good and a negative value
    ok = client.invoke(FunctionName=name, Payload=json.dumps(load_event("validator_ok")))
    bad = client.invoke(
        FunctionName=name, Payload=json.dumps(load_event("validator_negative")), LogType="Tail"
    )
    # THEN the payload is the handler's answer, or its error with X-Amz-Function-Error
    assert "FunctionError" not in ok
    assert json.loads(ok["Payload"].read()) == {"id": "direct-1", "value": 7}
    assert bad["FunctionError"] == "Handled"
    error = json.loads(bad["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("NegativeValue", "value -4 is negative")
    assert "REPORT RequestId: " in base64.b64decode(bad["LogResult"]).decode()


def test_partial_batch_failure_returns_only_the_failed_record_then_dead_letters_it(
    cloud: LocalCloud,
) -> None:
    # GIVEN four messages of which one is reported as a batch item failure
    sqs = cloud.client("sqs")
    sqs.send_message_batch(
        QueueUrl=cloud.resources["WorkQueue"],
        Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"id": f"p{i}", "fail": i == 2})}
            for i in range(1, 5)
        ],
    )
    # WHEN the poller has delivered them and the cloud settles
    status = cloud.wait_until_idle(timeout=60)
    # THEN the others were stored on their first receive, and only the failed one came back
    # after its visibility timeout until the redrive policy moved it to the DLQ
    assert status.idle is True
    assert {pk: item["receive_count"]["N"] for pk, item in _items(cloud, "msg-p").items()} == {
        "msg-p1": "1",
        "msg-p3": "1",
        "msg-p4": "1",
    }
    assert _drain(cloud, "WorkDeadLetterQueue") == [json.dumps({"id": "p2", "fail": True})]


def test_function_error_returns_the_whole_batch_to_the_queue(cloud: LocalCloud) -> None:
    # GIVEN one good message and one that crashes the function, sent in one batch
    sqs = cloud.client("sqs")
    sqs.send_message_batch(
        QueueUrl=cloud.resources["WorkQueue"],
        Entries=[
            {"Id": "good", "MessageBody": json.dumps({"id": "w1"})},
            {"Id": "crash", "MessageBody": json.dumps({"id": "w2", "crash": True})},
        ],
    )
    # WHEN the cloud settles
    status = cloud.wait_until_idle(timeout=60)
    # THEN nothing of the failed batch was ever deleted: both messages came back together
    # after the visibility timeout (the good one was processed again: at-least-once), failed
    # again, and the redrive policy moved both to the DLQ
    assert status.idle is True
    assert _items(cloud, "msg-w") == {
        "msg-w1": {"pk": {"S": "msg-w1"}, "receive_count": {"N": "2"}}
    }
    assert _drain(cloud, "WorkDeadLetterQueue") == [
        json.dumps({"id": "w1"}),
        json.dumps({"id": "w2", "crash": True}),
    ]
    crashes = [r for r in cloud.invocations() if r.error_type == "RuntimeError"]
    assert [r.error_message for r in crashes] == ["crash requested", "crash requested"]


def test_detect_labels_reads_the_s3_object_and_counts_calls(cloud: LocalCloud) -> None:
    # GIVEN an image in S3
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="labels-test")
    s3.put_object(Bucket="labels-test", Key="a.jpg", Body=b"x" * 30)
    rekognition = cloud.client("rekognition")
    image = {"S3Object": {"Bucket": "labels-test", "Name": "a.jpg"}}
    # WHEN DetectLabels is called twice for it
    first = rekognition.detect_labels(Image=image, MaxLabels=5, MinConfidence=70)
    rekognition.detect_labels(Image=image)
    # THEN the labeler saw the real bytes, and both calls are counted for that object
    assert [(label["Name"], label["Confidence"]) for label in first["Labels"]] == [("Blob", 80.0)]
    assert cloud.rekognition is not None
    assert cloud.rekognition.calls_by_source()["s3://labels-test/a.jpg"] == 2


def test_detect_labels_on_a_missing_object_is_invalid_s3_object(cloud: LocalCloud) -> None:
    # GIVEN no such object
    # WHEN DetectLabels is asked for it
    with pytest.raises(ClientError) as raised:
        cloud.client("rekognition").detect_labels(
            Image={"S3Object": {"Bucket": "labels-test", "Name": "missing.jpg"}}
        )
    # THEN Rekognition's error comes back
    assert raised.value.response["Error"]["Code"] == "InvalidS3ObjectException"


def test_labeler_error_becomes_the_service_error(cloud: LocalCloud) -> None:
    # GIVEN bytes the labeler rejects
    # WHEN DetectLabels is asked for them
    with pytest.raises(ClientError) as raised:
        cloud.client("rekognition").detect_labels(Image={"Bytes": NOT_AN_IMAGE})
    # THEN the labeler's error code is the service error
    assert raised.value.response["Error"]["Code"] == "InvalidImageFormatException"
    assert raised.value.response["Error"]["Message"] == "Request has invalid image format"


def test_fault_injector_is_consulted_before_labelling(cloud: LocalCloud) -> None:
    # GIVEN a fault injector that throttles every call
    assert cloud.rekognition is not None
    seen: list[LabelRequest] = []

    def throttle(request: LabelRequest) -> None:
        seen.append(request)
        raise LabelerError("ThrottlingException", "Slow down")

    cloud.rekognition.fault_injector = throttle
    try:
        # WHEN DetectLabels is called
        with pytest.raises(ClientError) as raised:
            cloud.client("rekognition").detect_labels(Image={"Bytes": b"abc"})
    finally:
        cloud.rekognition.fault_injector = None
    # THEN the injected error is returned, and the injector saw the request
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert [(r.source.startswith("bytes:sha256:"), r.image) for r in seen] == [(True, b"abc")]


def test_aws_sdk_integration_error_names_use_the_service_casing(cloud: LocalCloud) -> None:
    # GIVEN a state machine calling Rekognition through the aws-sdk integration
    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "Label",
        "States": {
            "Label": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:rekognition:detectLabels",
                "Parameters": {
                    "Image": {"S3Object": {"Bucket": "labels-test", "Name": "gone.jpg"}}
                },
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(
        name="sdk-casing",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sdk-casing",
    )["stateMachineArn"]
    # WHEN it runs on a missing object
    execution = sfn.start_execution(stateMachineArn=arn, name="missing-object")["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # THEN the error is named as Step Functions names it in AWS
    assert described["status"] == "FAILED"
    assert described["error"] == "Rekognition.InvalidS3ObjectException"


def test_wait_until_idle_reports_what_is_still_moving(cloud: LocalCloud) -> None:
    # GIVEN an invocation still running
    worker = threading.Thread(
        target=cloud.invoke, args=("SleeperFunction", load_event("sleeper_busy"))
    )
    worker.start()
    deadline = time.monotonic() + 10
    while cloud.idle_status().in_flight_invocations == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    seen: list[IdleStatus] = []
    # WHEN the caller waits for less time than it needs
    status = cloud.wait_until_idle(timeout=0.1, on_progress=seen.append)
    worker.join()
    # THEN the wait gives up and says why, having reported its progress
    assert (status.idle, status.in_flight_invocations) == (False, 1)
    assert seen[-1] == status
    assert cloud.wait_until_idle(timeout=10).idle is True


def test_fire_schedule_of_an_unknown_id_is_refused(cloud: LocalCloud) -> None:
    # GIVEN a function without any schedule
    # WHEN its schedule is fired
    # THEN a named error says so
    with pytest.raises(UnknownResourceError, match="'WorkerFunction' names no schedule rule"):
        cloud.fire_schedule("WorkerFunction")
