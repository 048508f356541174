"""Every AWS call a function makes ends before the timeout around it, read from the real files.

The chain: a client call (connect and read timeouts, attempts, backoff) inside the function's
time margin, inside the function's Timeout (template.yaml), inside the Step Functions task's
TimeoutSeconds (the ASL) for the workflow's tasks. Changing one link without the others fails
here. The clients are the handlers' own (their ``meta.config``), so a client made without its
config fails too. Nothing is called: making a client opens no socket.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.retries.standard import ExponentialBackoff, RetryContext
from samcli.yamlhelper import yaml_parse

from common.clients import CallBounds

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse((REPO / "template.yaml").read_text(encoding="utf-8"))
    return parsed


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    path = REPO / "statemachine" / "classify_image.asl.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def function_timeout(sam: dict[str, Any], function: str) -> int:
    timeout: int = sam["Resources"][function]["Properties"]["Timeout"]
    return timeout


def bounds_of(client: Any) -> CallBounds:
    """The bounds a real boto3 client applies, from its own config."""
    config = client.meta.config
    assert config.retries["mode"] == "standard"
    return CallBounds(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        attempts=config.retries["total_max_attempts"],
    )


@pytest.fixture
def cold_started(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the handlers' modules read at import, as their template gives it."""
    for name, value in {
        "RESULTS_TABLE": "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    }.items():
        monkeypatch.setenv(name, value)


def test_the_worst_case_counts_every_attempt_and_every_longest_backoff() -> None:
    # GIVEN four attempts of at most 1 s to connect and 2 s to read
    bounds = CallBounds(connect_timeout=1.0, read_timeout=2.0, attempts=4)
    # WHEN its worst case is computed
    # THEN it is 4 x 3 s of waits plus botocore's standard backoff ceilings of 1, 2 and 4 s
    assert bounds.worst_case_seconds() == 4 * 3.0 + 1 + 2 + 4
    # AND the client config says the same
    config: Any = bounds.config()
    assert (config.connect_timeout, config.read_timeout, config.retries) == (
        1.0,
        2.0,
        {"mode": "standard", "total_max_attempts": 4},
    )


def test_the_standard_backoff_ceiling_is_20_s() -> None:
    # GIVEN seven attempts of no wait at all
    bounds = CallBounds(connect_timeout=0.0, read_timeout=0.0, attempts=7)
    # WHEN its worst case is computed THEN the sixth backoff is capped at 20 s, not 32
    assert bounds.worst_case_seconds() == 1 + 2 + 4 + 8 + 16 + 20


def test_the_pinned_botocore_sleeps_no_longer_than_the_model(sam: dict[str, Any]) -> None:
    # The model is botocore's standard backoff as the pinned botocore (the one the functions
    # ship, test_sdk_packaging) runs it. Its "new retries" (NEW_RETRIES_ENABLED, off unless
    # AWS_NEW_RETRIES_2026=true or a later botocore's default) also honour an
    # x-amz-retry-after header, up to 5 s more per retry: StoreResult's two calls would be
    # 2 x (3 + 1 + 5) = 18 s against its 10 s task, so the model cannot simply take it in.
    # This fails when they come on; then every budget here needs those 5 s per retry.
    # GIVEN the pinned botocore's backoff, its jitter at its maximum, after a first attempt
    # whose answer asks for a 5 s wait
    backoff = ExponentialBackoff(random=lambda: 1.0, service_name="dynamodb")
    answer = AWSResponse(
        url="https://dynamodb.us-east-1.amazonaws.com/",
        status_code=400,
        headers=HeadersDict({"x-amz-retry-after": "5000"}),
        raw=None,
    )
    context = RetryContext(attempt_number=1, http_response=answer)

    # WHEN it computes the sleep before the second attempt
    # THEN the header is ignored: the sleep is the model's 1 s ceiling (rand x 2 ** 0)
    assert backoff.delay_amount(context) == 1.0
    assert CallBounds(connect_timeout=0.0, read_timeout=0.0, attempts=2).worst_case_seconds() == 1
    # AND no function's environment turns the new retries on
    environments = [sam["Globals"]["Function"]["Environment"]["Variables"]] + [
        resource["Properties"].get("Environment", {}).get("Variables", {})
        for resource in sam["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    assert [env for env in environments if "AWS_NEW_RETRIES_2026" in env] == []


@pytest.mark.usefixtures("cold_started")
def test_store_result_gives_up_on_dynamodb_within_its_task(
    sam: dict[str, Any], asl: dict[str, Any]
) -> None:
    # GIVEN StoreResultFunction's DynamoDB client, and its task's timeouts
    app = importlib.import_module("store_result.app")
    settings = importlib.import_module("store_result.settings")
    app.dynamodb_client.cache_clear()
    bounds = bounds_of(app.dynamodb_client())
    app.dynamodb_client.cache_clear()
    task_timeout = asl["States"]["Store Result"]["TimeoutSeconds"]

    # WHEN a store's calls (a Query, then TransactWriteItems) each take their longest
    worst = settings.DYNAMODB_CALLS_PER_STORE * bounds.worst_case_seconds()

    # THEN the store ends 2 s before the task and the function time out, so its error
    # (ResultStoreBusy, retried by the state machine) is what the execution sees
    assert bounds == CallBounds(connect_timeout=0.5, read_timeout=1.0, attempts=2)
    assert worst == settings.store_worst_case_seconds() == 8.0
    assert task_timeout == function_timeout(sam, "StoreResultFunction") == 10
    assert worst + 2.0 <= task_timeout


@pytest.mark.usefixtures("cold_started")
def test_fetch_image_keeps_time_for_its_s3_write(sam: dict[str, Any], asl: dict[str, Any]) -> None:
    # GIVEN FetchImageFunction's S3 client, its store margin, and its task's timeouts
    app = importlib.import_module("fetch_image.app")
    app.s3_client.cache_clear()
    bounds = bounds_of(app.s3_client())
    app.s3_client.cache_clear()
    properties = sam["Resources"]["FetchImageFunction"]["Properties"]
    host_timeouts = properties["Environment"]["Variables"]
    task_timeout = asl["States"]["Fetch Image"]["TimeoutSeconds"]

    # WHEN the PutObject takes its longest, after a download given the rest of the invocation
    download_budget = properties["Timeout"] - app.STORE_MARGIN_SECONDS

    # THEN the write ends within the margin kept back for it, with 1 s left for the answer
    assert bounds == CallBounds(connect_timeout=0.5, read_timeout=1.5, attempts=2)
    assert bounds.worst_case_seconds() + 1.0 == app.STORE_MARGIN_SECONDS == 6.0
    assert task_timeout == properties["Timeout"] == 20
    # AND the download still has room for one whole connect and read of the image host
    connect = float(host_timeouts["CONNECT_TIMEOUT_SECONDS"])
    read = float(host_timeouts["READ_TIMEOUT_SECONDS"])
    assert connect + read == 13.0
    assert connect + read <= download_budget == 14.0


@pytest.mark.parametrize(
    ("function", "settings_module", "margin", "expected_timeout"),
    [
        ("ProducerFunction", "producer.settings", ("producer.run", "TIME_MARGIN_MS"), 55),
        (
            "ExecutionCloserFunction",
            "execution_closer.settings",
            ("execution_closer.closer", "SWEEP_MARGIN_MS"),
            60,
        ),
    ],
)
def test_one_call_started_with_the_margin_left_ends_before_the_timeout(
    sam: dict[str, Any],
    function: str,
    settings_module: str,
    margin: tuple[str, str],
    expected_timeout: int,
) -> None:
    # GIVEN a scheduled function that starts no further unit of work with less than its
    # margin left, and the bounds of its clients
    bounds = importlib.import_module(settings_module).AWS_BOUNDS
    margin_seconds = getattr(importlib.import_module(margin[0]), margin[1]) / 1000

    # WHEN one call starts with just the margin left and takes its longest
    worst = bounds.worst_case_seconds()

    # THEN it ends within the margin, which is within the function's timeout
    assert bounds == CallBounds(connect_timeout=0.5, read_timeout=1.5, attempts=3)
    assert worst == 9.0
    assert worst < margin_seconds == 10.0
    assert margin_seconds < function_timeout(sam, function) == expected_timeout


def test_an_express_record_started_with_the_lease_left_ends_before_the_timeout(
    sam: dict[str, Any], asl: dict[str, Any]
) -> None:
    # GIVEN the classifier's DynamoDB and SQS bounds, its Step Functions connect timeout, the
    # claim lease it keeps for a record, the state machine's timeout and its own EXPRESS timeout
    settings = importlib.import_module("classifier.settings")
    properties = sam["Resources"]["ClassifierFunction"]["Properties"]
    lease = int(properties["Environment"]["Variables"]["CLAIM_LEASE_SECONDS"])
    condition, express_timeout, standard_timeout = properties["Timeout"]["Fn::If"]
    execution_timeout = asl["TimeoutSeconds"]

    # WHEN a record passes the lease check with just the lease left, then its reservation, its
    # StartSyncExecution and the settling of a failed execution all take their longest
    worst = settings.express_worst_case_seconds(execution_timeout)
    bounds: CallBounds = settings.AWS_BOUNDS

    # THEN it ends, response included, within the lease and so before the invocation does
    assert bounds == CallBounds(connect_timeout=0.5, read_timeout=0.75, attempts=2)
    assert bounds.worst_case_seconds() == 3.5
    assert (condition, express_timeout, standard_timeout) == ("IsExpress", 360, 60)
    assert (lease, execution_timeout, settings.STEPFUNCTIONS_CONNECT_TIMEOUT_SECONDS) == (
        330,
        300,
        3,
    )
    assert worst == 7 * 3.5 + 3 + 300 + 1 == 328.5
    assert worst <= lease < express_timeout
    # AND the lease taken after the reservation outlasts the execution it covers, so no other
    # delivery takes the image over while it runs
    reservation = settings.EXPRESS_DYNAMODB_CALLS_BEFORE_START * 3.5
    assert reservation + 3 + execution_timeout <= lease


def test_a_standard_start_at_its_worst_ends_inside_the_classifiers_standard_timeout(
    sam: dict[str, Any],
) -> None:
    # GIVEN the classifier's STANDARD Step Functions client (StartExecution answers as soon as
    # the execution exists) and the function's timeout under STANDARD
    settings = importlib.import_module("classifier.settings")
    lease = int(
        sam["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"][
            "CLAIM_LEASE_SECONDS"
        ]
    )
    config = settings.stepfunctions_config(
        # Only the two fields the client's bounds read; the rest of the environment is the
        # settings tests' concern.
        settings.ClassifierSettings.model_construct(
            workflow_type="STANDARD", claim_lease_seconds=lease
        )
    )
    _, _, standard_timeout = sam["Resources"]["ClassifierFunction"]["Properties"]["Timeout"][
        "Fn::If"
    ]

    # WHEN every attempt of one start stalls to its timeouts
    bounds = CallBounds(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        attempts=config.retries["total_max_attempts"],
    )

    # THEN they end with half the function's timeout to spare (not after the claim lease)
    assert bounds == CallBounds(connect_timeout=3, read_timeout=5, attempts=3)
    assert bounds.worst_case_seconds() == 3 * 8 + 1 + 2 == 27
    assert bounds.worst_case_seconds() < standard_timeout / 2
