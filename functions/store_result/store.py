"""Make a result DONE and its label items visible in one DynamoDB transaction.

Label items are what the ``ByLabel`` index returns, so they must never exist for an image that
is not DONE: they are written in the same ``TransactWriteItems`` as the DONE status, under the
condition that this execution still owns the claim. Label items a previous attempt left behind
(an older design wrote them one by one) are deleted in the same transaction unless the new
answer has them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from store_result.errors import ClaimLost, ResultStoreBusy
from store_result.models import DetectedLabel, StoreRequest, StoreResponse
from store_result.settings import DYNAMODB_BOUNDS, store_worst_case_seconds
from tweetlens_naming import DONE_STATUS, RESULT_SORT_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

LABEL_PREFIX = "LABEL#"
MAX_TRANSACTION_ITEMS = 100
# Cancellation reasons that say "not now" rather than "never".
_BUSY_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)
_BUSY_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionInProgressException",
    }
)


# What botocore raises once its attempts are spent without an answer (a connect or read timeout,
# a connection refused or dropped): the table is unreachable for now, not the request wrong.
_NO_ANSWER = (EndpointUnreachable, HTTPClientError)


def store_result(
    dynamodb: DynamoDBClient,
    table: str,
    request: StoreRequest,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> StoreResponse:
    """Write the DONE result and its label items atomically; raise a named error otherwise.

    No answer from DynamoDB is ResultStoreBusy too, so the state machine retries it instead of
    ending the execution. A transaction that did commit before its answer was lost (a read
    timeout, TransactionInProgressException) makes the retry's condition fail, as the result is
    DONE already: the retry recognises this execution's own DONE result and answers as the
    first attempt would have, so the image counts as classified, not as a duplicate.
    """
    try:
        return _store(dynamodb, table, request, clock)
    except _NO_ANSWER as error:
        raise ResultStoreBusy(f"DynamoDB did not answer: {type(error).__name__}") from error


def _store(
    dynamodb: DynamoDBClient, table: str, request: StoreRequest, clock: Callable[[], float]
) -> StoreResponse:
    started = clock()
    labels = _distinct(request.labels)
    stale = _existing_label_keys(dynamodb, table, request.message.url) - {
        LABEL_PREFIX + label.Name for label in labels
    }
    room = MAX_TRANSACTION_ITEMS - 1 - len(labels)
    for sort_key in sorted(stale)[room:]:
        # Stale items are already wrong; deleting the excess ahead of the transaction only
        # makes them disappear sooner.
        dynamodb.delete_item(TableName=table, Key=_key(request.message.url, sort_key))
    if len(stale) > room and clock() - started + DYNAMODB_BOUNDS.worst_case_seconds() > (
        store_worst_case_seconds()
    ):
        # That DeleteItem was a third call: with the transaction at its worst the store could
        # outlast the task's TimeoutSeconds, which ends the execution unretried. Stop here;
        # the state machine retries ResultStoreBusy in a fresh invocation, which finds the
        # excess already deleted and makes its two calls only.
        raise ResultStoreBusy("stale label deletes used the transaction's time; retrying")
    items: list[TransactWriteItemTypeDef] = [_done_update(table, request, labels)]
    items += [_label_put(table, request, label) for label in labels]
    items += [
        {"Delete": {"TableName": table, "Key": _key(request.message.url, sort_key)}}
        for sort_key in sorted(stale)[:room]
    ]
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as error:
        own = _own_done_result(error, request)
        if own is None:
            raise _named(error, request.execution) from error
        return own
    return StoreResponse(
        url=request.message.url,
        image_key=request.image_key,
        labels=[label.Name for label in labels],
    )


def _distinct(labels: list[DetectedLabel]) -> list[DetectedLabel]:
    """One label per name (the highest confidence): a transaction may touch an item once."""
    best: dict[str, DetectedLabel] = {}
    for label in labels:
        if label.Name not in best or label.Confidence > best[label.Name].Confidence:
            best[label.Name] = label
    return list(best.values())


def _existing_label_keys(dynamodb: DynamoDBClient, table: str, url: str) -> set[str]:
    keys: set[str] = set()
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="pk = :url AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":url": {"S": url}, ":prefix": {"S": LABEL_PREFIX}},
        ProjectionExpression="sk",
        ConsistentRead=True,
    )
    try:
        for page in pages:
            keys.update(item["sk"]["S"] for item in page.get("Items", []))
    except ClientError as error:
        if _code(error) in _BUSY_CODES:
            raise ResultStoreBusy(f"Query of stale labels throttled: {_code(error)}") from error
        raise
    return keys


def _key(url: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": url}, "sk": {"S": sort_key}}


def _number(value: float) -> dict[str, str]:
    # str(Decimal) of a float keeps its shortest exact spelling, which DynamoDB accepts.
    return {"N": str(Decimal(str(value)))}


def _done_update(
    table: str, request: StoreRequest, labels: list[DetectedLabel]
) -> TransactWriteItemTypeDef:
    message = request.message
    return {
        "Update": {
            "TableName": table,
            "Key": _key(message.url, RESULT_SORT_KEY),
            "UpdateExpression": (
                "SET #status = :done, labels = :labels, image_key = :image_key, "
                "classified_at = :classified_at, post_id = :post_id, media_key = :media_key, "
                "#text = :text, hashtags = :hashtags, #route = :route "
                "REMOVE open_claim, #error, #cause"
            ),
            "ConditionExpression": "#execution = :me AND #status = :in_progress",
            # A failed condition returns the item as the transaction read it (strongly
            # consistent), so a retry can tell its own committed write from another
            # execution's claim without a further call, within the task's time budget.
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {
                "#status": "status",
                "#execution": "execution",
                "#text": "text",
                "#route": "route",
                "#error": "error",
                "#cause": "cause",
            },
            "ExpressionAttributeValues": {
                ":done": {"S": DONE_STATUS},
                ":in_progress": {"S": "IN_PROGRESS"},
                ":me": {"S": request.execution},
                ":labels": {
                    "L": [
                        {"M": {"name": {"S": label.Name}, "confidence": _number(label.Confidence)}}
                        for label in labels
                    ]
                },
                ":image_key": {"S": request.image_key},
                ":classified_at": {"S": request.classified_at},
                ":post_id": {"S": message.post_id},
                ":media_key": {"S": message.media_key},
                ":text": {"S": message.text},
                ":hashtags": {"L": [{"S": tag} for tag in message.hashtags]},
                ":route": {"S": message.route},
            },
        }
    }


def _label_put(table: str, request: StoreRequest, label: DetectedLabel) -> TransactWriteItemTypeDef:
    return {
        "Put": {
            "TableName": table,
            "Item": {
                **_key(request.message.url, LABEL_PREFIX + label.Name),
                "label": {"S": label.Name},
                "confidence": _number(label.Confidence),
                "post_id": {"S": request.message.post_id},
                "route": {"S": request.message.route},
                "classified_at": {"S": request.classified_at},
            },
        }
    }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _own_done_result(error: ClientError, request: StoreRequest) -> StoreResponse | None:
    """This execution's answer if the transaction failed only because it committed before.

    The result item's condition (this execution's IN_PROGRESS claim) fails once the result is
    DONE; if the DONE item still names this execution, an earlier attempt's transaction wrote
    it (label items included, all or nothing) and its answer was lost. Another execution's
    DONE, or any other state, is not ours: None, and the error is named as before.
    """
    if _code(error) != "TransactionCanceledException":
        return None
    reasons = error.response.get("CancellationReasons", [])
    if not reasons or reasons[0].get("Code") != "ConditionalCheckFailed":
        return None
    # botocore parses the old item into AttributeValue dicts; its stub types the map loosely.
    item = cast(dict[str, Any], reasons[0].get("Item", {}))
    if (
        item.get("status", {}).get("S") != DONE_STATUS
        or item.get("execution", {}).get("S") != request.execution
    ):
        return None
    return StoreResponse(
        url=request.message.url,
        image_key=item["image_key"]["S"],
        labels=[label["M"]["name"]["S"] for label in item["labels"]["L"]],
    )


def _named(error: ClientError, execution: str) -> Exception:
    """The state machine's view of a failed transaction: claim lost, busy, or as it came."""
    if _code(error) == "TransactionCanceledException":
        reasons = [
            str(reason.get("Code", "None"))
            for reason in error.response.get("CancellationReasons", [])
        ]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return ClaimLost(f"{execution} no longer owns the claim; result not written")
        if any(reason in _BUSY_REASONS for reason in reasons):
            return ResultStoreBusy(f"transaction cancelled: {', '.join(reasons)}")
        return error
    if _code(error) in _BUSY_CODES:
        return ResultStoreBusy(f"transaction refused: {_code(error)}")
    return error
