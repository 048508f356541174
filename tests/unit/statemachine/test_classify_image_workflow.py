"""ClassifyImage, executed: every path from the claim to DONE, DUPLICATE or the dead letter."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from common.messages import ClassifyRequest, url_digest
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

CAT = "state_machine_cat_photo.json"
DOG_REDRIVEN = "state_machine_dog_photo_redriven.json"
OTHER_EXECUTION = (
    f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:"
    "a02ef976b2917256605ef7865f4e22c4438cce0a98926a416c7672344b4c5bfd-7"
)
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
REKOGNITION_CAUSE = re.compile(
    r"^(?P<message>.+) \(Service: Rekognition, Status Code: 400, Request ID: [^)]+\)$"
)
CHECKED_STATES = ["Check Input", "Check Hashtags", "Format Hashtags"]
HAPPY_STATES = [
    *CHECKED_STATES,
    "Claim Image",
    "Fetch Image",
    "Detect Labels",
    "Store Labels",
    "Store Result",
    "Classified",
]


def execution_arn(request: ClassifyRequest) -> str:
    return (
        f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:"
        f"{request.message.execution_name()}"
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
        "text": request.message.text,
        "hashtags": list(request.message.hashtags),
        "route": request.message.route,
        "lease_expires_at": Decimal(request.lease_expires_at),
    }


def done_item(
    workflow: Workflow, request: ClassifyRequest, recorded: dict[str, Any], extension: str
) -> dict[str, Any]:
    """The exact DONE result item; classified_at is checked for shape, then taken as is."""
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert ISO_8601.match(item["classified_at"])
    return {
        **post_attributes(request),
        "status": "DONE",
        "execution": execution_arn(request),
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


def dead_letter(request: ClassifyRequest, error: str, cause: str, state: str) -> dict[str, Any]:
    return {
        "message": request.message.model_dump(),
        "error": {"Error": error, "Cause": cause},
        "execution": execution_arn(request),
        "failed_state": state,
    }


def failed_item(request: ClassifyRequest, error: str, cause: str) -> dict[str, Any]:
    return {
        **post_attributes(request),
        "status": "FAILED",
        "execution": execution_arn(request),
        "error": error,
        "cause": cause,
    }


# ------------------------------------------------------------------------ classified


def test_new_image_is_classified_and_queryable_by_label(workflow: Workflow) -> None:
    # GIVEN a new cat photo the host serves and Rekognition labels Cat, Pet, Radiator
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    body = serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it succeeds with the label names
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "status": "DONE",
        "url": request.message.url,
        "image_key": image_key(request, "jpg"),
        "labels": ["Cat", "Pet", "Radiator"],
    }
    assert workflow.states_entered(result.arn) == HAPPY_STATES
    # AND the result item is DONE with the labels, post fields and image key
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
    assert workflow.dead_letters() == []


def is_claim(request: dict[str, Any]) -> bool:
    return str(request.get("UpdateExpression", "")).startswith("SET #status = :in_progress")


def is_store_result(request: dict[str, Any]) -> bool:
    return str(request.get("UpdateExpression", "")).startswith("SET #status = :done")


def is_label_item(request: dict[str, Any]) -> bool:
    return str(request["Item"]["sk"]["S"]).startswith("LABEL#")


def assert_dead_lettered(
    workflow: Workflow, request: ClassifyRequest, result: Any, *, error: str, cause: str, state: str
) -> None:
    """The execution failed with the error, the item says FAILED, the DLQ has the message."""
    assert result.status == "FAILED"
    assert (result.error, result.cause) == (error, cause)
    assert workflow.dead_letters() == [dead_letter(request, error, cause, state)]


def lambda_cause(workflow: Workflow) -> str:
    """Step Functions' cause of a Lambda task error: the error payload, compact JSON."""
    return json.dumps(workflow.lambdas.error_payloads[-1], separators=(",", ":"))


def test_redriven_message_reclaims_a_failed_item(workflow: Workflow) -> None:
    # GIVEN a dog photo whose first execution failed and which came back from the DLQ
    request = load_request(DOG_REDRIVEN)
    recorded = load_recorded("detect_labels_dog.json")
    workflow.rekognition.default = recorded
    failed_before = failed_item(request, "ImageHostError", "'pbs.twimg.com' answered 503")
    failed_before["execution"] = OTHER_EXECUTION
    workflow.put_result_item(failed_before)
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
    assert workflow.dead_letters() == []


def test_expired_lease_of_a_dead_execution_is_reclaimed(workflow: Workflow) -> None:
    # GIVEN an IN_PROGRESS claim whose lease ended before this request was made
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    workflow.put_result_item(
        {
            **post_attributes(request),
            "status": "IN_PROGRESS",
            "execution": OTHER_EXECUTION,
            "lease_expires_at": Decimal(request.requested_at - 1),
        }
    )
    serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it takes the claim over and classifies the image
    assert result.status == "SUCCEEDED"
    assert result.output is not None
    assert result.output["status"] == "DONE"
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, recorded, "jpg"
    )


# ------------------------------------------------------------------------ duplicates


def test_already_classified_image_is_a_duplicate(workflow: Workflow) -> None:
    # GIVEN a result item that is DONE
    request = load_request(CAT)
    done = {
        **post_attributes(request),
        "status": "DONE",
        "execution": OTHER_EXECUTION,
        "labels": [{"name": "Cat", "confidence": Decimal("97.5")}],
        "image_key": image_key(request, "jpg"),
        "classified_at": "2026-11-26T10:00:00.000Z",
    }
    workflow.put_result_item(done)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it ends as a duplicate without fetching or labelling anything
    assert result.status == "SUCCEEDED"
    assert result.output == {"status": "DUPLICATE", "url": request.message.url}
    assert workflow.states_entered(result.arn) == [*CHECKED_STATES, "Claim Image", "Duplicate"]
    assert workflow.host.requests == []
    assert workflow.rekognition.requests == []
    # AND the item is untouched
    assert workflow.result_item(request.message.url) == done
    assert workflow.dead_letters() == []


def test_live_claim_of_another_execution_is_a_duplicate(workflow: Workflow) -> None:
    # GIVEN another execution's IN_PROGRESS claim whose lease is still running
    request = load_request(CAT)
    claimed = {
        **post_attributes(request),
        "status": "IN_PROGRESS",
        "execution": OTHER_EXECUTION,
        "lease_expires_at": Decimal(request.requested_at + 500),
    }
    workflow.put_result_item(claimed)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it leaves the image to the other execution
    assert result.status == "SUCCEEDED"
    assert result.output == {"status": "DUPLICATE", "url": request.message.url}
    assert workflow.states_entered(result.arn) == [*CHECKED_STATES, "Claim Image", "Duplicate"]
    assert workflow.host.requests == []
    assert workflow.result_item(request.message.url) == claimed
    assert workflow.dead_letters() == []


def test_claim_taken_over_before_store_is_a_duplicate(workflow: Workflow) -> None:
    # GIVEN an execution whose claim is taken over by another while Rekognition works
    request = load_request(CAT)
    serve_image(workflow)
    taken_over = {
        **post_attributes(request),
        "status": "IN_PROGRESS",
        "execution": OTHER_EXECUTION,
        "lease_expires_at": Decimal(request.lease_expires_at + 900),
    }
    workflow.rekognition.on_request = lambda: workflow.put_result_item(taken_over)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN its result is refused and it ends as a duplicate
    assert result.status == "SUCCEEDED"
    assert result.output == {"status": "DUPLICATE", "url": request.message.url}
    assert workflow.states_entered(result.arn)[-2:] == ["Store Result", "Duplicate"]
    # AND the newer execution's claim is untouched
    assert workflow.result_item(request.message.url) == taken_over
    assert workflow.dead_letters() == []


# ------------------------------------------------------------------------ fetch failures


@pytest.mark.parametrize(
    ("error", "message", "host_requests"),
    [
        pytest.param(
            "ImageNotFound",
            "'pbs.twimg.com' answered 404: the image is gone",
            1,
            id="ImageNotFound",
        ),
        pytest.param(
            "ImageTooLarge",
            "'pbs.twimg.com' announced 15728641 bytes; the limit is 15728640",
            1,
            id="ImageTooLarge",
        ),
        pytest.param(
            "UnsupportedImageType",
            "the 16 bytes received are neither JPEG nor PNG (first bytes 4749463839610100)",
            1,
            id="UnsupportedImageType",
        ),
        pytest.param(
            "BlockedUrl",
            "host 'pbs.twimg.com' resolves to non-public address 10.20.30.40",
            0,
            id="BlockedUrl",
        ),
        pytest.param(
            "InvalidFetchRequest",
            "invalid fetch request: bucket: String should match pattern "
            "'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'",
            0,
            id="InvalidFetchRequest",
        ),
    ],
)
def test_permanent_fetch_error_is_dead_lettered_without_retry(
    workflow: Workflow, error: str, message: str, host_requests: int
) -> None:
    # GIVEN an image that can never be fetched, for the reason under test
    request = load_request(CAT)
    if error == "ImageNotFound":
        workflow.host.serve(HostReply(status=404))
    elif error == "ImageTooLarge":
        workflow.host.serve(
            HostReply(headers={"content-type": "image/jpeg", "content-length": "15728641"})
        )
    elif error == "UnsupportedImageType":
        workflow.host.serve(
            HostReply(
                body=b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff",
                headers={"content-type": "image/jpeg"},
            )
        )
    elif error == "BlockedUrl":
        workflow.host.addresses = ["10.20.30.40"]
    else:
        # A stack whose bucket substitution is wrong sends a malformed task input.
        workflow.redeploy(ImagesBucketName="Tweetlens_Images")

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the fetch function raised the error once, and nothing was retried
    assert workflow.lambdas.error_payloads[-1]["errorType"] == error
    assert workflow.lambdas.error_payloads[-1]["errorMessage"] == message
    assert len(workflow.lambdas.error_payloads) == 1
    assert len(workflow.host.requests) == host_requests
    assert workflow.retry_waits == []
    assert workflow.rekognition.requests == []
    # AND the item is FAILED and the message is in the workflow DLQ with the error
    cause = lambda_cause(workflow)
    assert workflow.result_item(request.message.url) == failed_item(request, error, cause)
    assert_dead_lettered(workflow, request, result, error=error, cause=cause, state="Fetch Image")


def test_image_host_error_is_retried_then_classified(workflow: Workflow) -> None:
    # GIVEN an image host that answers 503 once, then serves the image
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    workflow.host.serve(HostReply(status=503))
    serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN Fetch Image was retried once, after a jittered wait of at most 5 s
    assert result.status == "SUCCEEDED"
    assert [payload["errorType"] for payload in workflow.lambdas.error_payloads] == [
        "ImageHostError"
    ]
    assert len(workflow.host.requests) == 2
    assert len(workflow.retry_waits) == 1
    assert 0 <= workflow.retry_waits[0] <= 5
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, recorded, "jpg"
    )
    assert workflow.dead_letters() == []


def test_image_host_error_until_retries_run_out_is_dead_lettered(workflow: Workflow) -> None:
    # GIVEN an image host that keeps answering 503
    request = load_request(CAT)
    workflow.host.serve(*[HostReply(status=503)] * 4)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN Fetch Image ran 1 + 3 times and the last error went to the DLQ
    assert len(workflow.host.requests) == 4
    assert len(workflow.retry_waits) == 3
    assert workflow.lambdas.error_payloads[-1]["errorMessage"] == "'pbs.twimg.com' answered 503"
    cause = lambda_cause(workflow)
    assert workflow.result_item(request.message.url) == failed_item(
        request, "ImageHostError", cause
    )
    assert_dead_lettered(
        workflow, request, result, error="ImageHostError", cause=cause, state="Fetch Image"
    )


# ------------------------------------------------------------------------ label failures


def test_invalid_image_format_is_dead_lettered(workflow: Workflow) -> None:
    # GIVEN an image Rekognition refuses
    request = load_request(CAT)
    serve_image(workflow)
    workflow.rekognition.outcomes.append(
        ("InvalidImageFormatException", "Request has invalid image format")
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN Detect Labels was not retried
    assert len(workflow.rekognition.requests) == 1
    assert workflow.retry_waits == []
    # AND the cause is Rekognition's message with the service details
    assert result.cause is not None
    cause_match = REKOGNITION_CAUSE.match(result.cause)
    assert cause_match is not None
    assert cause_match.group("message") == "Request has invalid image format"
    error = "Rekognition.InvalidImageFormatException"
    assert workflow.result_item(request.message.url) == failed_item(request, error, result.cause)
    assert_dead_lettered(
        workflow, request, result, error=error, cause=result.cause, state="Detect Labels"
    )


def test_rekognition_throttling_is_retried_then_classified(workflow: Workflow) -> None:
    # GIVEN Rekognition throttles the first DetectLabels call
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    serve_image(workflow)
    workflow.rekognition.outcomes.append(("ThrottlingException", "Rate exceeded"))

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the call was retried after a jittered wait of at most 2 s
    assert result.status == "SUCCEEDED"
    assert len(workflow.rekognition.requests) == 2
    assert len(workflow.retry_waits) == 1
    assert 0 <= workflow.retry_waits[0] <= 2
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, recorded, "jpg"
    )
    assert workflow.dead_letters() == []


def test_failure_after_claim_was_taken_over_leaves_the_item_alone(workflow: Workflow) -> None:
    # GIVEN a claim taken over while Rekognition refuses the image
    request = load_request(CAT)
    serve_image(workflow)
    taken_over = {
        **post_attributes(request),
        "status": "IN_PROGRESS",
        "execution": OTHER_EXECUTION,
        "lease_expires_at": Decimal(request.lease_expires_at + 900),
    }
    workflow.rekognition.on_request = lambda: workflow.put_result_item(taken_over)
    workflow.rekognition.outcomes.append(
        ("InvalidImageFormatException", "Request has invalid image format")
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN Record Failure's refusal is passed over and the message still reaches the DLQ
    assert workflow.states_entered(result.arn)[-4:] == [
        "Detect Labels Failed",
        "Record Failure",
        "Send To Dead Letter Queue",
        "Failed",
    ]
    assert result.cause is not None
    error = "Rekognition.InvalidImageFormatException"
    assert_dead_lettered(
        workflow, request, result, error=error, cause=result.cause, state="Detect Labels"
    )
    # AND the newer execution's claim is untouched
    assert workflow.result_item(request.message.url) == taken_over


# ------------------------------------------------------------------------ store failures


def test_dynamodb_throttling_on_store_is_retried(workflow: Workflow) -> None:
    # GIVEN DynamoDB throttles the first write of the result
    request = load_request(CAT)
    recorded = load_recorded("detect_labels_cat.json")
    serve_image(workflow)
    workflow.dynamodb_faults.fail_next(
        "UpdateItem",
        is_store_result,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN Store Result was written on the second attempt
    assert result.status == "SUCCEEDED"
    assert workflow.dynamodb_faults.count("UpdateItem", is_store_result) == 2
    assert len(workflow.retry_waits) == 1
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, recorded, "jpg"
    )
    assert workflow.dead_letters() == []


ACCESS_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/ClassifyImageRole/session is not "
    "authorized to perform this action"
)


def test_claim_error_is_dead_lettered(workflow: Workflow) -> None:
    # GIVEN the claim is refused for a reason other than the condition
    request = load_request(CAT)
    workflow.dynamodb_faults.fail_next(
        "UpdateItem", is_claim, "AccessDeniedException", ACCESS_DENIED
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN nothing was fetched, a FAILED item records the error, the DLQ has the message
    assert workflow.host.requests == []
    assert result.cause is not None
    assert result.cause.startswith(ACCESS_DENIED + " (Service: AmazonDynamoDBv2; ")
    error = "DynamoDB.AccessDeniedException"
    assert workflow.result_item(request.message.url) == {
        "pk": request.message.url,
        "sk": "RESULT",
        "status": "FAILED",
        "execution": execution_arn(request),
        "error": error,
        "cause": result.cause,
    }
    assert_dead_lettered(
        workflow, request, result, error=error, cause=result.cause, state="Claim Image"
    )


def test_label_item_error_is_dead_lettered(workflow: Workflow) -> None:
    # GIVEN a label item write is refused
    request = load_request(CAT)
    serve_image(workflow)
    workflow.dynamodb_faults.fail_next(
        "PutItem", is_label_item, "AccessDeniedException", ACCESS_DENIED
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the result is never written and the message is dead-lettered from Store Labels
    assert workflow.dynamodb_faults.count("UpdateItem", is_store_result) == 0
    assert result.cause is not None
    error = "DynamoDB.AccessDeniedException"
    assert workflow.result_item(request.message.url) == failed_item(request, error, result.cause)
    assert_dead_lettered(
        workflow, request, result, error=error, cause=result.cause, state="Store Labels"
    )


def test_result_write_error_is_dead_lettered(workflow: Workflow) -> None:
    # GIVEN the result write is refused for a reason other than the condition
    request = load_request(CAT)
    serve_image(workflow)
    workflow.dynamodb_faults.fail_next(
        "UpdateItem", is_store_result, "AccessDeniedException", ACCESS_DENIED
    )

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the retry policy left it alone and the message is dead-lettered from Store Result
    assert workflow.retry_waits == []
    assert result.cause is not None
    error = "DynamoDB.AccessDeniedException"
    assert workflow.result_item(request.message.url) == failed_item(request, error, result.cause)
    assert_dead_lettered(
        workflow, request, result, error=error, cause=result.cause, state="Store Result"
    )


def test_image_without_labels_is_classified_with_none(workflow: Workflow) -> None:
    # GIVEN an image on which Rekognition finds nothing above MinConfidence
    request = load_request(CAT)
    serve_image(workflow)
    no_labels = {"Labels": [], "LabelModelVersion": "3.0"}
    workflow.rekognition.default = no_labels

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it is DONE with an empty label list and no label items
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "status": "DONE",
        "url": request.message.url,
        "image_key": image_key(request, "jpg"),
        "labels": [],
    }
    assert workflow.result_item(request.message.url) == done_item(
        workflow, request, no_labels, "jpg"
    )
    assert workflow.label_items(request.message.url) == []
