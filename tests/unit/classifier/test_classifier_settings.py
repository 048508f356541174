"""ClassifierFunction's environment contract (docs/architecture.md, "Environment variables")."""

from __future__ import annotations

import json

import pytest

from classifier.settings import (
    ClassifierSettings,
    InvalidSettings,
    load_settings,
    stepfunctions_config,
)

CATS_ARN = "arn:aws:sqs:us-east-1:123456789012:tweetlens-dev-CatsQueue-Xb8k2LmQ9pZr"
CATS_DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/tweetlens-dev-CatsDeadLetterQueue-H"
LOCAL_DLQ = "http://127.0.0.1:5001/123456789012/tweetlens-dev-DogsDeadLetterQueue-L"
DOGS_ARN = "arn:aws:sqs:us-east-1:123456789012:tweetlens-dev-DogsQueue-Pf5Rj2Yc8Dm"
WORKFLOW_DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/tweetlens-dev-WorkflowDLQ-W"
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:ClassifyImage-a1B2"
VALID = {
    "RESULTS_TABLE": "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD",
    "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
    "ROUTE_DLQ_URLS": json.dumps({CATS_ARN: CATS_DLQ, DOGS_ARN: LOCAL_DLQ}),
    "ROUTE_DLQ_URLS_BY_ROUTE": json.dumps({"cats": CATS_DLQ, "dogs": LOCAL_DLQ}),
    "CLAIM_LEASE_SECONDS": "900",
    "WORKFLOW_TYPE": "EXPRESS",
    "WORKFLOW_DLQ_URL": WORKFLOW_DLQ,
    "DETECT_LABELS_RATE": "50",
    "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    "AWS_REGION": "us-east-1",
}
ONE_QUEUE_PER_ROUTE = (
    "environment: Value error, ROUTE_DLQ_URLS_BY_ROUTE must give each dead-letter queue of "
    "ROUTE_DLQ_URLS to exactly one route, and no other queue"
)


def test_valid_environment_is_parsed() -> None:
    # GIVEN the environment the template sets (plus unrelated runtime variables)
    # WHEN it is loaded
    settings = load_settings(VALID)

    # THEN every value is typed and the DLQ map is decoded
    assert settings == ClassifierSettings.model_validate(
        {
            "RESULTS_TABLE": "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD",
            "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
            "ROUTE_DLQ_URLS": json.dumps({CATS_ARN: CATS_DLQ, DOGS_ARN: LOCAL_DLQ}),
            "ROUTE_DLQ_URLS_BY_ROUTE": json.dumps({"cats": CATS_DLQ, "dogs": LOCAL_DLQ}),
            "CLAIM_LEASE_SECONDS": "900",
            "WORKFLOW_TYPE": "EXPRESS",
            "WORKFLOW_DLQ_URL": WORKFLOW_DLQ,
            "DETECT_LABELS_RATE": "50",
            "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
        }
    )
    assert settings.results_table == "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD"
    assert settings.state_machine_arn == STATE_MACHINE_ARN
    assert settings.route_dlq_urls == {CATS_ARN: CATS_DLQ, DOGS_ARN: LOCAL_DLQ}
    assert settings.route_dlq_urls_by_route == {"cats": CATS_DLQ, "dogs": LOCAL_DLQ}
    assert settings.claim_lease_seconds == 900
    assert settings.workflow_type == "EXPRESS"
    assert settings.workflow_dlq_url == WORKFLOW_DLQ
    assert settings.detect_labels_rate == 50.0
    assert settings.metrics_namespace == "tweetlens"


@pytest.mark.parametrize(
    "name",
    [
        "RESULTS_TABLE",
        "STATE_MACHINE_ARN",
        "ROUTE_DLQ_URLS",
        "ROUTE_DLQ_URLS_BY_ROUTE",
        "CLAIM_LEASE_SECONDS",
        "WORKFLOW_TYPE",
        "DETECT_LABELS_RATE",
        "POWERTOOLS_METRICS_NAMESPACE",
    ],
)
def test_missing_variable_is_named(name: str) -> None:
    # GIVEN an environment without one required variable
    environ = {key: value for key, value in VALID.items() if key != name}

    # WHEN it is loaded THEN the error names exactly that variable
    with pytest.raises(InvalidSettings) as raised:
        load_settings(environ)
    assert str(raised.value) == f"invalid ClassifierFunction environment: {name}: Field required"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (
            {"ROUTE_DLQ_URLS": "cats=https://example"},
            "ROUTE_DLQ_URLS: Invalid JSON: expected value at line 1 column 1",
        ),
        (
            {"ROUTE_DLQ_URLS": "{}"},
            "ROUTE_DLQ_URLS: Dictionary should have at least 1 item after validation, not 0",
        ),
        (
            {"ROUTE_DLQ_URLS": json.dumps({"tweetlens-dev-CatsQueue": CATS_DLQ})},
            "ROUTE_DLQ_URLS.tweetlens-dev-CatsQueue.[key]: String should match pattern "
            "'^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$'",
        ),
        (
            {"ROUTE_DLQ_URLS": json.dumps({CATS_ARN: "tweetlens-dev-CatsDeadLetterQueue"})},
            f"ROUTE_DLQ_URLS.{CATS_ARN}: String should match pattern "
            "'^https?://[^\\s/]+/[0-9]{12}/[A-Za-z0-9_-]{1,80}$'",
        ),
        (
            {"ROUTE_DLQ_URLS_BY_ROUTE": json.dumps({"Cats!": CATS_DLQ, "dogs": LOCAL_DLQ})},
            "ROUTE_DLQ_URLS_BY_ROUTE.Cats!.[key]: String should match pattern "
            "'^[a-z0-9][a-z0-9-]{0,39}$'",
        ),
        (
            {"ROUTE_DLQ_URLS_BY_ROUTE": json.dumps({"cats": CATS_DLQ})},
            ONE_QUEUE_PER_ROUTE,
        ),
        (
            {"ROUTE_DLQ_URLS_BY_ROUTE": json.dumps({"cats": CATS_DLQ, "dogs": CATS_DLQ})},
            ONE_QUEUE_PER_ROUTE,
        ),
        (
            {
                "ROUTE_DLQ_URLS_BY_ROUTE": json.dumps(
                    {
                        "cats": CATS_DLQ,
                        "dogs": LOCAL_DLQ,
                        "birds": "https://sqs.us-east-1.amazonaws.com/123456789012/elsewhere",
                    }
                )
            },
            ONE_QUEUE_PER_ROUTE,
        ),
        (
            {"STATE_MACHINE_ARN": "arn:aws:lambda:us-east-1:123456789012:function:x"},
            "STATE_MACHINE_ARN: String should match pattern "
            "'^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$'",
        ),
        (
            {"RESULTS_TABLE": "t"},
            "RESULTS_TABLE: String should match pattern '^[A-Za-z0-9_.-]{3,255}$'",
        ),
        (
            {"CLAIM_LEASE_SECONDS": "fifteen minutes"},
            "CLAIM_LEASE_SECONDS: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        (
            {"CLAIM_LEASE_SECONDS": "30"},
            "CLAIM_LEASE_SECONDS: Input should be greater than or equal to 60",
        ),
        (
            {"WORKFLOW_DLQ_URL": ""},
            "WORKFLOW_DLQ_URL: String should match pattern "
            "'^https?://[^\\s/]+/[0-9]{12}/[A-Za-z0-9_-]{1,80}$'",
        ),
        (
            {"WORKFLOW_TYPE": "express"},
            "WORKFLOW_TYPE: Input should be 'STANDARD' or 'EXPRESS'",
        ),
        (
            {"DETECT_LABELS_RATE": "-1"},
            "DETECT_LABELS_RATE: Input should be greater than or equal to 0",
        ),
        (
            {"DETECT_LABELS_RATE": "10001"},
            "DETECT_LABELS_RATE: Input should be less than or equal to 10000",
        ),
        (
            {"DETECT_LABELS_RATE": "nan"},
            "DETECT_LABELS_RATE: Input should be a finite number",
        ),
        (
            {"POWERTOOLS_METRICS_NAMESPACE": ""},
            "POWERTOOLS_METRICS_NAMESPACE: String should have at least 1 character",
        ),
    ],
)
def test_malformed_variable_is_explained(override: dict[str, str], problem: str) -> None:
    # GIVEN an environment with one malformed variable
    environ = VALID | override

    # WHEN it is loaded THEN the error says which variable and why
    with pytest.raises(InvalidSettings) as raised:
        load_settings(environ)
    assert str(raised.value) == f"invalid ClassifierFunction environment: {problem}"


def test_route_queues_are_named_by_their_dead_letter_queue() -> None:
    # GIVEN the environment the template sets
    settings = load_settings(VALID)

    # WHEN each route queue's route is asked for, and that of a queue the deployment lacks
    # THEN a route queue has the route its dead-letter queue is given, any other queue none
    assert settings.route_of_queue(CATS_ARN) == "cats"
    assert settings.route_of_queue(DOGS_ARN) == "dogs"
    assert settings.route_of_queue("arn:aws:sqs:us-east-1:123456789012:MyQueue") is None


def test_route_queue_urls_follow_their_dead_letter_queues() -> None:
    # GIVEN the environment the template sets (one route in AWS, one in the local cloud)
    settings = load_settings(VALID)

    # WHEN each route queue's URL is asked for, and that of a queue the deployment lacks
    # THEN a route queue's URL is its dead-letter queue's with its own name; any other, none
    assert settings.route_queue_url(CATS_ARN) == (
        "https://sqs.us-east-1.amazonaws.com/123456789012/tweetlens-dev-CatsQueue-Xb8k2LmQ9pZr"
    )
    assert settings.route_queue_url(DOGS_ARN) == (
        "http://127.0.0.1:5001/123456789012/tweetlens-dev-DogsQueue-Pf5Rj2Yc8Dm"
    )
    assert settings.route_queue_url("arn:aws:sqs:us-east-1:123456789012:MyQueue") is None


def test_express_without_its_dead_letter_queue_is_refused() -> None:
    # GIVEN an EXPRESS environment without WORKFLOW_DLQ_URL
    environ = {key: value for key, value in VALID.items() if key != "WORKFLOW_DLQ_URL"}

    # WHEN it is loaded THEN the error says what EXPRESS needs
    with pytest.raises(InvalidSettings) as raised:
        load_settings(environ)
    assert str(raised.value) == (
        "invalid ClassifierFunction environment: environment: Value error, "
        "WORKFLOW_TYPE EXPRESS needs WORKFLOW_DLQ_URL"
    )


def test_standard_needs_no_workflow_dead_letter_queue() -> None:
    # GIVEN a STANDARD environment without WORKFLOW_DLQ_URL (the closer letters executions)
    environ = {key: value for key, value in VALID.items() if key != "WORKFLOW_DLQ_URL"}

    # WHEN it is loaded THEN it is valid and has no workflow dead-letter queue
    settings = load_settings(environ | {"WORKFLOW_TYPE": "STANDARD"})
    assert settings.workflow_dlq_url is None


def test_standard_limits_all_starts_to_the_rate() -> None:
    # GIVEN STANDARD with DetectLabels rate 50/s
    settings = load_settings(VALID | {"WORKFLOW_TYPE": "STANDARD"})

    # WHEN the rate the starts are limited to is asked for
    # THEN it is the whole rate: every invocation shares one limit (classifier.pacing)
    assert settings.start_rate == 50.0


def test_a_rate_between_0_and_1_is_refused() -> None:
    # GIVEN a rate that one-second windows could grant no start at all
    environ = VALID | {"WORKFLOW_TYPE": "STANDARD", "DETECT_LABELS_RATE": "0.5"}

    # WHEN it is loaded THEN the error says what is allowed
    with pytest.raises(InvalidSettings) as raised:
        load_settings(environ)
    assert str(raised.value) == (
        "invalid ClassifierFunction environment: environment: Value error, "
        "DETECT_LABELS_RATE must be 0 (no limit) or at least 1"
    )


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({"WORKFLOW_TYPE": "STANDARD", "DETECT_LABELS_RATE": "0"}, id="rate-0"),
        pytest.param({"WORKFLOW_TYPE": "EXPRESS"}, id="express"),
    ],
)
def test_no_limit_when_starts_are_not_limited(override: dict[str, str]) -> None:
    # GIVEN STANDARD with rate 0 (no limit), or EXPRESS (which bounds images in flight)
    # WHEN the rate is asked for THEN there is none: nothing is limited
    assert load_settings(VALID | override).start_rate is None


@pytest.mark.parametrize(
    ("workflow_type", "read_timeout", "attempts"), [("EXPRESS", 900, 1), ("STANDARD", 5, 3)]
)
def test_stepfunctions_client_is_bounded_by_the_invocation(
    workflow_type: str, read_timeout: int, attempts: int
) -> None:
    # GIVEN the environment of either workflow type
    settings = load_settings(VALID | {"WORKFLOW_TYPE": workflow_type})

    # WHEN the Step Functions client's configuration is made
    config = stepfunctions_config(settings)

    # THEN it connects within seconds, reads for the claim lease under EXPRESS (the start
    # answers when the execution ends) and for seconds under STANDARD (it answers at once),
    # and retries only where a start is idempotent (STANDARD names; an Express start retried
    # could run twice)
    assert (config.connect_timeout, config.read_timeout, config.retries) == (
        3,
        read_timeout,
        {"mode": "standard", "total_max_attempts": attempts},
    )
