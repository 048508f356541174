"""ClassifyImage, executed: every path from the claim to DONE, DUPLICATE or a failed execution.

Failed executions are not dead-lettered here: that is ExecutionCloserFunction's job
(test_execution_closer.py). These tests check what the workflow itself leaves behind.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from common.messages import ClassifyRequest, execution_name, reservation_id, url_digest
from tests.unit.statemachine.harness import (
    ACCOUNT_ID,
    IMAGES_BUCKET,
    REGION,
    RESULTS_TABLE,
    STATE_MACHINE_NAME,
    HostReply,
    Workflow,
    image_bytes,
    load_recorded,
    load_request,
)
from tests.unit.store_result.lost_reply import FirstTransactionLosesItsReply

CAT = "state_machine_cat_photo.json"
DOG_REDRIVEN = "state_machine_dog_photo_redriven.json"
OTHER_EXECUTION = (
    f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:"
    "a02ef976b2917256605ef7865f4e22c4438cce0a98926a416c7672344b4c5bfd-7"
)
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
HAPPY_STATES = ["Claim Image", "Fetch Image", "Detect Labels", "Store Result"]
DUPLICATE_STATES = ["Claim Image", "Duplicate"]
# Issue budget: a classified image, a duplicate, a failure (states entered = billed transitions).
MAX_CLASSIFIED_TRANSITIONS = 5
MAX_DUPLICATE_TRANSITIONS = 2
MAX_FAILURE_TRANSITIONS = 6


def execution_arn(request: ClassifyRequest, sequence: int = 1) -> str:
    return (
        f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:"
        f"{execution_name(request.message.url, sequence)}"
    )


def image_key(request: ClassifyRequest, extension: str) -> str:
    return f"images/{url_digest(request.message.url)}.{extension}"


def serve_image(workflow: Workflow, extension: str = ".jpg") -> bytes:
    body = image_bytes(extension)
    content_type = "image/jpeg" if extension == ".jpg" else "image/png"
    workflow.host.serve(HostReply(body=body, headers={"content-type": content_type}))
    return body


def labels_attribute(recorded: dict[str, Any]) -> list[dict[str, Any]]:
    """The result item's ``labels`` as boto3 reads it back."""
    return [
        {"name": label["Name"], "confidence": Decimal(str(label["Confidence"]))}
        for label in recorded["Labels"]
    ]


def post_attributes(request: ClassifyRequest) -> dict[str, Any]:
    return {
        "pk": request.message.url,
        "sk": "RESULT",
        "post_id": request.message.post_id,
        "media_key": request.message.media_key,
        "text": request.message.text,
        "hashtags": list(request.message.hashtags),
        "route": request.message.route,
    }


def claim_attributes(request: ClassifyRequest, sequence: int = 1) -> dict[str, Any]:
    return {
        "pk": request.message.url,
        "sk": "RESULT",
        "status": "IN_PROGRESS",
        "execution": execution_arn(request, sequence),
        "lease_expires_at": Decimal(request.lease_expires_at),
        "open_claim": "OPEN",
        "message": request.message.model_dump_json(),
    }


def done_item(
    workflow: Workflow, request: ClassifyRequest, recorded: dict[str, Any], extension: str
) -> dict[str, Any]:
    """The exact DONE result item; classified_at is checked for shape, then taken as is."""
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert ISO_8601.match(item["classified_at"])
    claim = claim_attributes(request)
    del claim["open_claim"]
    return {
        **claim,
        **post_attributes(request),
        "status": "DONE",
        "labels": labels_attribute(recorded),
        "image_key": image_key(request, extension),
        "classified_at": item["classified_at"],
    }


def expected_label_items(
    request: ClassifyRequest, recorded: dict[str, Any], classified_at: str
) -> list[dict[str, Any]]:
    return sorted(
        (
            {
                "pk": request.message.url,
                "sk": f"LABEL#{label['Name']}",
                "label": label["Name"],
                "confidence": Decimal(str(label["Confidence"])),
                "post_id": request.message.post_id,
                "route": request.message.route,
                "classified_at": classified_at,
            }
            for label in recorded["Labels"]
        ),
        key=lambda item: str(item["sk"]),
    )


def lambda_cause(workflow: Workflow) -> str:
    """Step Functions' cause of a Lambda task error: the error payload, compact JSON."""
    return json.dumps(workflow.lambdas.error_payloads[-1], separators=(",", ":"))


def rekognition_answer(labels: int) -> dict[str, Any]:
    return {
        "Labels": [
            {"Name": f"Label{index:02d}", "Confidence": 99.0 - index, "Parents": []}
            for index in range(labels)
        ],
        "LabelModelVersion": "3.0",
    }


# ------------------------------------------------------------------------ classified
def test_new_image_is_classified_and_queryable_by_label(workflow: Workflow) -> None:
    # GIVEN a new cat photo the host serves and Rekognition labels Cat, Pet, Radiator
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    body = serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it succeeds with the label names, through four states
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "status": "DONE",
        "url": request.message.url,
        "image_key": image_key(request, "jpg"),
        "labels": ["Cat", "Pet", "Radiator"],
    }
    assert workflow.states_entered(result.arn) == HAPPY_STATES
    # AND the result item is DONE with the labels, post fields and image key, claim closed
    expected = done_item(workflow, request, recorded, "jpg")
    assert workflow.result_item(request.message.url) == expected
    # AND one label item per label shares the classification time
    assert workflow.label_items(request.message.url) == expected_label_items(
        request, recorded, expected["classified_at"]
    )
    # AND "Cat with confidence >= 80" is one query on ByLabel
    by_label = workflow.dynamodb.Table(RESULTS_TABLE).query(
        IndexName="ByLabel",
        KeyConditionExpression=Key("label").eq("Cat") & Key("confidence").gte(Decimal(80)),
    )
    assert [item["pk"] for item in by_label["Items"]] == [request.message.url]
    # AND Rekognition read the stored object with the template's limits
    assert workflow.rekognition.requests == [
        {
            "Image": {"S3Object": {"Bucket": IMAGES_BUCKET, "Name": image_key(request, "jpg")}},
            "MaxLabels": 10,
            "MinConfidence": 70,
        }
    ]
    stored = workflow.s3.get_object(Bucket=IMAGES_BUCKET, Key=image_key(request, "jpg"))
    assert stored["Body"].read() == body
    assert workflow.host.requests == [
        {
            "address": "151.101.244.159",
            "port": 443,
            "host": "pbs.twimg.com",
            "target": "/media/GdKq3xWXkAAQ7cT.jpg",
        }
    ]


@pytest.mark.parametrize("hashtags", [1, 5])
@pytest.mark.parametrize("labels", [1, 10])
def test_classified_image_costs_at_most_five_transitions(
    workflow: Workflow, hashtags: int, labels: int
) -> None:
    # GIVEN a post with N hashtags whose photo gets M labels
    base = load_request(CAT)
    message = base.message.model_copy(update={"hashtags": [f"tag{i}" for i in range(hashtags)]})
    request = base.model_copy(update={"message": message})
    workflow.rekognition.default = rekognition_answer(labels)
    serve_image(workflow)

    # WHEN it is classified
    result = workflow.run(request)

    # THEN the history shows the same four billed states whatever N and M are
    assert result.status == "SUCCEEDED"
    entered = workflow.states_entered(result.arn)
    assert entered == HAPPY_STATES
    assert len(entered) <= MAX_CLASSIFIED_TRANSITIONS
    assert len(workflow.label_items(request.message.url)) == labels


def test_redriven_message_reclaims_a_failed_item(workflow: Workflow) -> None:
    # GIVEN a dog photo whose first execution failed and which came back from the DLQ
    request = load_request(DOG_REDRIVEN)
    recorded = load_recorded("detect_labels_dog.json")
    workflow.rekognition.default = recorded
    workflow.put_result_item(
        {
            **post_attributes(request),
            "status": "FAILED",
            "execution": OTHER_EXECUTION,
            "error": "ImageHostError",
            "cause": "'pbs.twimg.com' answered 503",
        }
    )
    serve_image(workflow, ".png")

    # WHEN the new attempt runs
    result = workflow.run(request)

    # THEN it claims the FAILED item and classifies the PNG
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "status": "DONE",
        "url": request.message.url,
        "image_key": image_key(request, "png"),
        "labels": ["Dog", "Snow"],
    }
    # AND the item is DONE, owned by this execution, without the old error and cause
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, recorded, "png"
    )


def test_expired_lease_of_a_dead_execution_is_reclaimed(workflow: Workflow) -> None:
    # GIVEN an IN_PROGRESS claim whose lease ended before this request was made
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    workflow.put_result_item(
        {
            **claim_attributes(request),
            "execution": OTHER_EXECUTION,
            "lease_expires_at": Decimal(request.requested_at - 1),
        }
    )
    serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it takes the claim over and classifies the image
    assert result.status == "SUCCEEDED"
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, recorded, "jpg"
    )


def test_claim_of_an_ended_execution_is_taken_over_inside_its_lease(workflow: Workflow) -> None:
    # GIVEN a live-looking claim (lease not expired) whose execution the classifier saw end
    base = load_request(CAT)
    request = base.model_copy(update={"supersedes": OTHER_EXECUTION})
    recorded = load_recorded("detect_labels_cat.json")
    workflow.put_result_item({**claim_attributes(base), "execution": OTHER_EXECUTION})
    serve_image(workflow)

    # WHEN the next attempt, which names it in `supersedes`, runs
    result = workflow.run(request, sequence=8)

    # THEN the stale lease does not swallow it: the image is classified by the new execution
    assert result.status == "SUCCEEDED"
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["execution"]) == ("DONE", execution_arn(request, 8))
    assert item == {**done_item(workflow, request, recorded, "jpg"), "execution": item["execution"]}


def test_claim_takes_over_the_classifiers_reservation(workflow: Workflow) -> None:
    # GIVEN the image reserved by the classifier for one SQS message (WorkflowType=EXPRESS),
    # with a live lease, as it writes it before StartSyncExecution
    base = load_request(CAT)
    reservation = reservation_id("5e0c1a7b-0b1d-4f4e-9c3a-00000000e001")
    request = base.model_copy(update={"supersedes": reservation})
    recorded = load_recorded("detect_labels_cat.json")
    workflow.put_result_item({**claim_attributes(base), "execution": reservation})
    serve_image(workflow)

    # WHEN the execution started for that message, naming the reservation, runs
    result = workflow.run(request, sequence=3)

    # THEN its claim takes the reservation over and the image is classified by it
    assert result.status == "SUCCEEDED"
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["execution"]) == ("DONE", execution_arn(request, 3))
    assert item == {**done_item(workflow, request, recorded, "jpg"), "execution": item["execution"]}


def test_reservation_for_another_message_makes_the_execution_a_duplicate(
    workflow: Workflow,
) -> None:
    # GIVEN the image reserved for another SQS message, its lease live
    request = load_request(CAT)
    other = reservation_id("5e0c1a7b-0b1d-4f4e-9c3a-00000000e002")
    reserved = {**claim_attributes(request), "execution": other}
    workflow.put_result_item(reserved)

    # WHEN an execution that does not name that reservation runs
    result = workflow.run(request)

    # THEN it leaves the reservation alone: a duplicate, nothing fetched
    assert result.output == {"status": "DUPLICATE"}
    assert workflow.states_entered(result.arn) == DUPLICATE_STATES
    assert workflow.result_item(request.message.url) == reserved


def test_later_success_replaces_stale_label_items(workflow: Workflow) -> None:
    # GIVEN a FAILED result next to label items an earlier attempt left (Old, Pet)
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    workflow.put_result_item({**post_attributes(request), "status": "FAILED"})
    for name in ("Old", "Pet"):
        workflow.put_result_item(
            {"pk": request.message.url, "sk": f"LABEL#{name}", "label": name, "confidence": 1}
        )
    serve_image(workflow)

    # WHEN the image is classified again with Cat, Pet, Radiator
    result = workflow.run(request)

    # THEN exactly the new answer's label items remain (Old deleted, Pet replaced)
    assert result.status == "SUCCEEDED"
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert workflow.label_items(request.message.url) == expected_label_items(
        request, recorded, item["classified_at"]
    )


def test_image_without_labels_is_classified_with_none(workflow: Workflow) -> None:
    # GIVEN an image Rekognition finds nothing in
    request = load_request(CAT)
    workflow.rekognition.default = {"Labels": [], "LabelModelVersion": "3.0"}
    serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it is DONE with no labels and no label items
    assert result.status == "SUCCEEDED"
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["labels"]) == ("DONE", [])
    assert workflow.label_items(request.message.url) == []


# ------------------------------------------------------------------------ duplicates
def test_already_classified_image_is_a_duplicate(workflow: Workflow) -> None:
    # GIVEN a DONE result for the URL
    request = load_request(CAT)
    done = {**post_attributes(request), "status": "DONE", "execution": OTHER_EXECUTION}
    workflow.put_result_item(done)

    # WHEN another execution for it runs
    result = workflow.run(request)

    # THEN it ends as a duplicate in two states, fetching and labelling nothing
    assert result.status == "SUCCEEDED"
    assert result.output == {"status": "DUPLICATE"}
    assert workflow.states_entered(result.arn) == DUPLICATE_STATES
    assert len(DUPLICATE_STATES) <= MAX_DUPLICATE_TRANSITIONS
    assert workflow.host.requests == []
    assert workflow.rekognition.requests == []
    assert workflow.result_item(request.message.url) == done


def test_live_claim_of_another_execution_is_a_duplicate(workflow: Workflow) -> None:
    # GIVEN another execution's claim with an unexpired lease, not superseded
    request = load_request(CAT)
    claim = {**claim_attributes(request), "execution": OTHER_EXECUTION}
    workflow.put_result_item(claim)

    # WHEN this execution runs
    result = workflow.run(request)

    # THEN it leaves the claim alone as a duplicate
    assert result.output == {"status": "DUPLICATE"}
    assert workflow.states_entered(result.arn) == DUPLICATE_STATES
    assert workflow.result_item(request.message.url) == claim


@pytest.mark.no_application_metrics
def test_claim_taken_over_before_store_is_a_duplicate(workflow: Workflow) -> None:
    # GIVEN an execution whose claim another execution takes over while labels are detected
    request = load_request(CAT)
    serve_image(workflow)
    taken = {**claim_attributes(request), "execution": OTHER_EXECUTION}
    workflow.rekognition.on_request = lambda: workflow.put_result_item(taken)

    # WHEN it reaches Store Result
    result = workflow.run(request)

    # THEN it writes nothing and ends as a duplicate in five states
    assert result.status == "SUCCEEDED"
    assert result.output == {"status": "DUPLICATE"}
    assert workflow.states_entered(result.arn) == [*HAPPY_STATES, "Duplicate"]
    assert workflow.result_item(request.message.url) == taken
    assert workflow.label_items(request.message.url) == []


# ------------------------------------------------------------------------ failures
def assert_failed_after_claim(
    workflow: Workflow, request: ClassifyRequest, result: Any, states: list[str]
) -> None:
    """The execution failed; its claim is still open for the closer; no label is visible."""
    assert result.status == "FAILED"
    assert workflow.states_entered(result.arn) == states
    assert len(states) <= MAX_FAILURE_TRANSITIONS
    assert workflow.result_item(request.message.url) == claim_attributes(request)
    assert workflow.label_items(request.message.url) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, "ImageNotFound"), (410, "ImageNotFound"), (403, "ImageUnavailable")],
)
def test_permanent_fetch_error_fails_without_retry(
    workflow: Workflow, status: int, error: str
) -> None:
    # GIVEN an image host that refuses the image for good
    request = load_request(CAT)
    workflow.host.serve(HostReply(status=status))

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it fails at once with the fetch function's error name
    assert_failed_after_claim(workflow, request, result, ["Claim Image", "Fetch Image"])
    assert (result.error, result.cause) == (error, lambda_cause(workflow))
    assert len(workflow.host.requests) == 1
    assert workflow.retry_waits == []


def test_image_host_error_is_retried_then_classified(workflow: Workflow) -> None:
    # GIVEN a host that answers 503 once, then the image
    request = load_request(CAT)
    workflow.host.serve(HostReply(status=503))
    serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the fetch is retried once (within its capped backoff) and the image classified
    assert result.status == "SUCCEEDED"
    assert len(workflow.host.requests) == 2
    assert len(workflow.retry_waits) == 1
    assert 0 <= workflow.retry_waits[0] <= 3


def test_image_host_error_until_retries_run_out_fails(workflow: Workflow) -> None:
    # GIVEN a host that answers 503 on every attempt
    request = load_request(CAT)
    workflow.host.serve(*[HostReply(status=503)] * 3)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it fails with ImageHostError after three attempts
    assert_failed_after_claim(workflow, request, result, ["Claim Image", "Fetch Image"])
    assert result.error == "ImageHostError"
    assert len(workflow.host.requests) == 3


def test_invalid_image_format_fails(workflow: Workflow) -> None:
    # GIVEN an image Rekognition refuses
    request = load_request(CAT)
    serve_image(workflow)
    workflow.rekognition.outcomes.append(
        ("InvalidImageFormatException", "Request has unsupported image format")
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it fails with Rekognition's error name, not retried
    assert_failed_after_claim(
        workflow, request, result, ["Claim Image", "Fetch Image", "Detect Labels"]
    )
    assert result.error == "Rekognition.InvalidImageFormatException"
    assert len(workflow.rekognition.requests) == 1


def test_rekognition_throttling_is_retried_then_classified(workflow: Workflow) -> None:
    # GIVEN Rekognition throttles twice, then answers, each call taking 20 ms
    request = load_request(CAT)
    serve_image(workflow)
    workflow.rekognition.outcomes.extend(
        [("ThrottlingException", "Slow down"), ("ThrottlingException", "Slow down")]
    )
    answered: list[datetime] = []

    def slow_call() -> None:
        time.sleep(0.02)
        answered.append(datetime.now(UTC))

    workflow.rekognition.on_request = slow_call

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it is classified after two capped waits, still in four states
    assert result.status == "SUCCEEDED"
    assert len(workflow.rekognition.requests) == 3
    assert workflow.states_entered(result.arn) == HAPPY_STATES
    # AND a Standard workflow bills each retry as a transition: four states and two retries
    assert workflow.billed_transitions(result.arn) == len(HAPPY_STATES) + 2
    # AND the result's classification time is when the labels came back, not when Detect
    # Labels was first entered (the bench's "stored" time; the state's time has ms precision)
    classified_at = datetime.fromisoformat(
        str(workflow.result_item(request.message.url)["classified_at"]).replace("Z", "+00:00")
    )
    assert classified_at >= answered[-1].replace(
        microsecond=answered[-1].microsecond // 1000 * 1000
    )


def test_dynamodb_throttling_on_store_is_retried(workflow: Workflow) -> None:
    # GIVEN DynamoDB throttles the first store transaction
    request = load_request(CAT)
    serve_image(workflow)
    workflow.dynamodb_faults.fail_next(
        "TransactWriteItems",
        lambda _: True,
        "ProvisionedThroughputExceededException",
        "Rate exceeded",
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the store is retried (ResultStoreBusy) and the image classified once
    assert result.status == "SUCCEEDED"
    assert workflow.dynamodb_faults.count("TransactWriteItems", lambda _: True) == 2
    assert len(workflow.rekognition.requests) == 1


@pytest.mark.no_application_metrics  # the first Store Result invocation ends in ResultStoreBusy
def test_store_whose_committed_transaction_lost_its_reply_is_classified(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a store transaction that commits but whose answer is lost (a read timeout)
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    serve_image(workflow)
    store_app = importlib.import_module("store_result.app")
    client = FirstTransactionLosesItsReply(store_app.dynamodb_client())
    monkeypatch.setattr(store_app, "dynamodb_client", lambda: client)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the state machine retries the store (ResultStoreBusy), which recognises its own
    # committed write: the image is classified once, not a duplicate of itself
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "status": "DONE",
        "url": request.message.url,
        "image_key": image_key(request, "jpg"),
        "labels": ["Cat", "Pet", "Radiator"],
    }
    assert workflow.states_entered(result.arn) == HAPPY_STATES
    assert client.transactions == 2
    assert len(workflow.retry_waits) == 1
    # AND the result and its label items are the first attempt's, written once
    expected = done_item(workflow, request, recorded, "jpg")
    assert workflow.result_item(request.message.url) == expected
    assert workflow.label_items(request.message.url) == expected_label_items(
        request, recorded, expected["classified_at"]
    )


def test_claim_error_fails_before_anything_is_fetched(workflow: Workflow) -> None:
    # GIVEN DynamoDB refuses the claim with a permanent error
    request = load_request(CAT)
    workflow.dynamodb_faults.fail_next(
        "UpdateItem", lambda _: True, "AccessDeniedException", "not authorised"
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it fails in its first state with DynamoDB's error, nothing written or fetched
    assert result.status == "FAILED"
    assert result.error == "DynamoDB.AccessDeniedException"
    assert workflow.states_entered(result.arn) == ["Claim Image"]
    assert workflow.result_item(request.message.url) is None
    assert workflow.host.requests == []


@pytest.mark.no_application_metrics
def test_store_error_leaves_no_label_visible(workflow: Workflow) -> None:
    # GIVEN DynamoDB refuses the store transaction with a permanent error
    request = load_request(CAT)
    serve_image(workflow)
    workflow.dynamodb_faults.fail_next(
        "TransactWriteItems", lambda _: True, "ValidationException", "item too large"
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it fails in Store Result, and no label item was written (one transaction)
    assert_failed_after_claim(workflow, request, result, HAPPY_STATES)
    assert result.error == "ClientError"


@pytest.mark.parametrize(
    "execution_input",
    [[], "just text", {"message": {"url": "https://pbs.twimg.com/media/x.jpg"}}],
    ids=["list", "string", "message-without-fields"],
)
def test_hand_started_malformed_input_fails_in_the_first_state(
    workflow: Workflow, execution_input: Any
) -> None:
    # GIVEN an input the classifier would never send (only a hand-made StartExecution can)
    # WHEN it runs
    result = workflow.run_raw("hand-started", execution_input)

    # THEN the workflow does not re-validate it: the execution fails in its first state,
    # naming the missing path. (AWS calls this error States.Runtime; moto 5.2.5's interpreter
    # reports it as DynamoDB.AmazonDynamoDBException. The closer dead-letters either.)
    assert result.status == "FAILED"
    assert result.cause is not None
    assert "could not be found in the input" in result.cause
    assert workflow.states_entered(result.arn) == ["Claim Image"]
