"""template.yaml and the ClassifyImage ASL, checked as CloudFormation will see them.

The template is transformed offline by the SAM translator (no AWS call: the managed policy
loader answers from the translator's bundled map), so the assertions read the roles, queues
and event source mappings that `sam deploy` would really create.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, cast
from unittest import mock

import boto3
import pytest
from cfnlint.api import lint_file  # type: ignore[import-untyped]
from moto import mock_aws
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform
from statelint.linter import Linter  # type: ignore[import-untyped]

from classifier.logic import START_MARGIN_SECONDS
from classifier.pacing import RETRY_JITTER_SECONDS
from classifier.settings import MAX_DETECT_LABELS_RATE, load_settings
from execution_closer.settings import load_settings as load_closer_settings
from fetch_image.settings import FetchSettings
from producer.settings import ProducerSettings
from store_result.settings import load_settings as load_store_settings
from tweetlens.bench.options import BenchOptions
from tweetlens.localcloud.deploy import Deployer, check_parameter_value, prepare
from tweetlens.localcloud.emulator import Emulator

REPO = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO / "template.yaml"
ASL_PATH = REPO / "statemachine" / "classify_image.asl.json"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9]+)\}")
REGION = "us-east-1"

ROUTE_QUEUES = {"CatsQueue": "CatsDeadLetterQueue", "DogsQueue": "DogsDeadLetterQueue"}
DEAD_LETTER_RETENTION_SECONDS = 1_209_600
# Actions AWS offers no resource-level permission for; each is explained in template.yaml.
WILDCARD_RESOURCE_EXCEPTIONS = {
    ("ClassifyImageStateMachineRole", "DetectLabels"): ["rekognition:DetectLabels"],
    ("ClassifyImageStateMachineRole", "DeliverExecutionLogs"): [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ],
}
TRANSIENT_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "ImageHostError",
    "Rekognition.ThrottlingException",
    "Rekognition.ProvisionedThroughputExceededException",
    "Rekognition.InternalServerErrorException",
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.InternalServerErrorException",
    "ResultStoreBusy",
}
# Express workflows run at most 5 minutes; the ASL is shared by both workflow types.
EXPRESS_LIMIT_SECONDS = 300
# Lambda runs a function for at most 15 minutes.
LAMBDA_TIMEOUT_LIMIT_SECONDS = 900
# The classifier's lease covers the workflow's timeout plus the gap between its clock reading
# and the execution's start.
LEASE_MARGIN_SECONDS = 30
# Under EXPRESS the classifier's timeout is the lease plus this: the time its one record may
# take before its execution starts (validation, lookup, reservation) without being deferred.
CLASSIFIER_MARGIN_SECONDS = 30
# The types the local cloud knows how to create (or knowingly skips).
LOCAL_CLOUD_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Serverless::StateMachine",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::LogGroup",
    "AWS::IAM::Role",
}


class BundledPolicies:
    """Managed policy loader for an offline transform: the translator's own map suffices."""

    def load(self) -> dict[str, str]:
        return {}


@cache
def _sam_template() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def sam_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(_sam_template())
    return parsed


@cache
def _transformed() -> str:
    template = sam_template()
    # The translator wants artifacts in S3, as `sam package` leaves them; the paths are
    # checked separately below.
    template["Globals"]["Function"]["CodeUri"] = "s3://tweetlens-artifacts/functions.zip"
    template["Resources"]["ClassifyImageStateMachine"]["Properties"]["DefinitionUri"] = (
        "s3://tweetlens-artifacts/classify_image.asl.json"
    )
    # The translator takes the region (hence the partition of managed policy ARNs) from a
    # boto3 session, as SAM CLI does.
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": REGION}):
        transformed = transform(template, {}, BundledPolicies())
    return json.dumps(transformed)


@pytest.fixture
def cfn() -> dict[str, Any]:
    """GIVEN template.yaml transformed to CloudFormation by the SAM translator."""
    loaded: dict[str, Any] = json.loads(_transformed())
    return loaded


@pytest.fixture
def sam() -> dict[str, Any]:
    """GIVEN template.yaml as written."""
    return sam_template()


@pytest.fixture
def asl() -> dict[str, Any]:
    """GIVEN the ClassifyImage definition."""
    loaded: dict[str, Any] = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return loaded


def resources_of_type(cfn: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in cfn["Resources"].items()
        if resource["Type"] == type_name
    }


def branches(node: Any) -> Iterator[dict[str, Any]]:
    """The statements of a policy, both sides of every Fn::If, AWS::NoValue left out."""
    if isinstance(node, list):
        for item in node:
            yield from branches(item)
    elif isinstance(node, dict) and "Fn::If" in node:
        _condition, when_true, when_false = node["Fn::If"]
        yield from branches(when_true)
        yield from branches(when_false)
    elif isinstance(node, dict) and node != {"Ref": "AWS::NoValue"}:
        yield node


def role_statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in resources_of_type(cfn, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in branches(policy["PolicyDocument"]["Statement"]):
                yield name, statement


def resource_policy_statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for type_name in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
        for name, policy in resources_of_type(cfn, type_name).items():
            for statement in branches(policy["Properties"]["PolicyDocument"]["Statement"]):
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every state, with whether a Map around it catches its errors."""

    def walk(
        found: dict[str, Any], caught_outside: bool
    ) -> Iterator[tuple[str, dict[str, Any], bool]]:
        for name, state in found.items():
            yield name, state, caught_outside
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor is not None:
                yield from walk(processor["States"], caught_outside or "Catch" in state)

    yield from walk(states, False)


# ------------------------------------------------------------------------ linters


def test_cfn_lint_finds_nothing() -> None:
    # WHEN cfn-lint checks the template (SAM transform included)
    matches = lint_file(TEMPLATE_PATH)

    # THEN there is no finding at all
    assert [str(match) for match in matches] == []


def test_statelint_finds_nothing() -> None:
    # WHEN statelint checks the ASL file
    problems = Linter.validate(str(ASL_PATH))

    # THEN there is no problem
    assert problems == []


def test_resource_types_are_the_ones_the_local_cloud_handles(sam: dict[str, Any]) -> None:
    # WHEN the template's resource types are listed
    types = {resource["Type"] for resource in sam["Resources"].values()}

    # THEN each is one the local cloud creates or knowingly skips
    assert types == LOCAL_CLOUD_TYPES


# ------------------------------------------------------------------------ least privilege


def test_no_action_is_a_wildcard(cfn: dict[str, Any]) -> None:
    # WHEN every action of every role and resource policy is listed
    actions = [
        action
        for _, statement in [*role_statements(cfn), *resource_policy_statements(cfn)]
        for action in as_list(statement["Action"])
    ]

    # THEN none contains "*"
    assert actions
    assert [action for action in actions if "*" in action] == []


def test_only_documented_statements_have_a_wildcard_resource(cfn: dict[str, Any]) -> None:
    # WHEN the role statements on Resource "*" are collected
    wildcard = {
        (role, statement.get("Sid")): as_list(statement["Action"])
        for role, statement in role_statements(cfn)
        if "*" in as_list(statement["Resource"])
    }

    # THEN they are exactly the actions without resource-level permissions
    assert wildcard == WILDCARD_RESOURCE_EXCEPTIONS


def test_managed_policies_are_only_logging_and_tracing(cfn: dict[str, Any]) -> None:
    # WHEN the managed policies SAM attaches are listed per role
    managed = {
        name: role["Properties"].get("ManagedPolicyArns", [])
        for name, role in resources_of_type(cfn, "AWS::IAM::Role").items()
    }

    # THEN they are logs and traces for every function and traces for the workflow; the
    # classifier has a hand-written role, so SAM never attaches AWSLambdaSQSQueueExecutionRole
    # (receive/delete on every queue of the account) to it
    logs = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    traces = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
    partition_aware = [
        {"Fn::Sub": arn.replace(":aws:iam:", ":${AWS::Partition}:iam:")} for arn in (logs, traces)
    ]
    assert managed == {
        "ProducerFunctionRole": [logs, traces],
        "ClassifierFunctionRole": partition_aware,
        "FetchImageFunctionRole": [logs, traces],
        "StoreResultFunctionRole": [logs, traces],
        "ExecutionCloserFunctionRole": [logs, traces],
        "ClassifyImageStateMachineRole": [traces],
    }


def test_resource_policies_only_deny_insecure_transport(cfn: dict[str, Any]) -> None:
    # WHEN the queue and bucket policies are read
    statements = [statement for _, statement in resource_policy_statements(cfn)]

    # THEN each statement denies requests that do not use TLS, and nothing else
    assert len(statements) == 2
    for statement in statements:
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_producer_reads_exactly_the_bearer_token_of_the_chosen_store(cfn: dict[str, Any]) -> None:
    # WHEN the producer's token statement is read
    policy = cfn["Resources"]["ProducerFunctionRole"]["Properties"]["Policies"][0]
    conditional = [
        statement["Fn::If"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in statement
    ]

    # THEN it is the secret (its name and the six random characters Secrets Manager adds,
    # not "<name>-<anything>": another secret could be named so) or the parameter, by condition
    (secret_condition, secret, no_secret), (parameter_condition, parameter, no_parameter) = (
        conditional[0],
        conditional[1],
    )
    assert (secret_condition, no_secret) == ("ReadsXWithSecretsManager", {"Ref": "AWS::NoValue"})
    assert secret["Action"] == "secretsmanager:GetSecretValue"
    assert secret["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
        "secret:${BearerTokenName}-??????"
    }
    assert (parameter_condition, no_parameter) == (
        "ReadsXWithParameterStore",
        {"Ref": "AWS::NoValue"},
    )
    assert parameter["Action"] == "ssm:GetParameter"
    # AND the replay object is readable only when replaying from S3
    assert conditional[2][0] == "ReadsReplayFromS3"
    assert conditional[2][1]["Action"] == "s3:GetObject"
    assert conditional[2][2] == {"Ref": "AWS::NoValue"}


def test_the_token_is_readable_only_by_a_stack_reading_x(cfn: dict[str, Any]) -> None:
    # WHEN the conditions of the two token grants are read
    conditions = cfn["Conditions"]

    # THEN each holds only when the producer reads X (PostSource=x-api), from its store: a
    # replaying stack has no grant on the token, whatever BearerTokenStore says
    reads_x = {"Fn::Equals": [{"Ref": "PostSource"}, "x-api"]}
    assert conditions["ReadsXWithSecretsManager"] == {
        "Fn::And": [reads_x, {"Condition": "UsesSecretsManager"}]
    }
    assert conditions["ReadsXWithParameterStore"] == {
        "Fn::And": [reads_x, {"Fn::Not": [{"Condition": "UsesSecretsManager"}]}]
    }
    assert conditions["UsesSecretsManager"] == {
        "Fn::Equals": [{"Ref": "BearerTokenStore"}, "secretsmanager"]
    }


def test_producer_role_grants_exactly_the_calls_its_code_makes(cfn: dict[str, Any]) -> None:
    # WHEN the producer role's statements are read (both sides of each condition)
    statements = {
        statement["Sid"]: (as_list(statement["Action"]), statement["Resource"])
        for role, statement in role_statements(cfn)
        if role == "ProducerFunctionRole"
    }

    # THEN it may send to the route queues and its dead-letter queue (SendMessageBatch is
    # authorised by SendMessage), read and put its checkpoint, and read its token or replay
    # object, and nothing else: the calls tests/unit/producer records the code making
    assert statements == {
        "SendToRouteQueues": (
            ["sqs:SendMessage"],
            [{"Fn::GetAtt": ["CatsQueue", "Arn"]}, {"Fn::GetAtt": ["DogsQueue", "Arn"]}],
        ),
        "SendToProducerDeadLetterQueue": (
            ["sqs:SendMessage"],
            {"Fn::GetAtt": ["ProducerDeadLetterQueue", "Arn"]},
        ),
        "Checkpoint": (
            ["dynamodb:GetItem", "dynamodb:PutItem"],
            {"Fn::GetAtt": ["CheckpointsTable", "Arn"]},
        ),
        "ReadBearerTokenSecret": (
            ["secretsmanager:GetSecretValue"],
            {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                "${AWS::AccountId}:secret:${BearerTokenName}-??????"
            },
        ),
        "ReadBearerTokenParameter": (
            ["ssm:GetParameter"],
            [
                {
                    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
                    f"parameter{separator}${{BearerTokenName}}"
                }
                for separator in ("/", "")
            ],
        ),
        "ReadReplayObject": (
            ["s3:GetObject"],
            {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:s3:::${ReplayObject}",
                    {
                        "ReplayObject": {
                            "Fn::Select": [
                                1,
                                {"Fn::Split": ["s3://", {"Fn::Sub": "${ReplayUri}s3://"}]},
                            ]
                        }
                    },
                ]
            },
        ),
    }


# ------------------------------------------------------------------------ queues


def by_workflow_type(value: Any) -> dict[str, Any]:
    """A value that depends on WorkflowType (``Fn::If IsExpress``), for each type."""
    condition, express, standard = value["Fn::If"]
    assert condition == "IsExpress"
    return {"EXPRESS": express, "STANDARD": standard}


def test_route_queue_visibility_is_six_times_the_classifier_timeout(cfn: dict[str, Any]) -> None:
    # WHEN the classifier's timeout and the queues its event source mappings read are listed
    timeouts = by_workflow_type(cfn["Resources"]["ClassifierFunction"]["Properties"]["Timeout"])
    mappings = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    consumed = sorted(
        mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for mapping in mappings
    )

    # THEN they are the route queues, each visible again only after 6 x the timeout, for
    # either workflow type
    assert consumed == sorted(ROUTE_QUEUES)
    for queue in consumed:
        visibility = by_workflow_type(cfn["Resources"][queue]["Properties"]["VisibilityTimeout"])
        for workflow_type, timeout in timeouts.items():
            assert visibility[workflow_type] >= 6 * timeout, (queue, workflow_type)


def test_express_timeouts_chain(cfn: dict[str, Any], asl: dict[str, Any]) -> None:
    # WHEN the EXPRESS side of every timeout on an image's way is read
    variables = cfn["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    lease = int(variables["CLAIM_LEASE_SECONDS"])
    timeout = by_workflow_type(cfn["Resources"]["ClassifierFunction"]["Properties"]["Timeout"])
    visibility = {
        queue: by_workflow_type(cfn["Resources"][queue]["Properties"]["VisibilityTimeout"])
        for queue in ROUTE_QUEUES
    }

    # THEN the workflow ends within Express's limit, the lease outlasts it, the classifier
    # (one record per invocation) waits at least a lease for the record it starts, with
    # exactly the margin before it for the work that precedes the start, and a message comes
    # back only after 6 x that timeout
    assert asl["TimeoutSeconds"] <= EXPRESS_LIMIT_SECONDS < lease < timeout["EXPRESS"]
    assert timeout["EXPRESS"] - lease == CLASSIFIER_MARGIN_SECONDS
    assert timeout["EXPRESS"] <= LAMBDA_TIMEOUT_LIMIT_SECONDS
    for queue, seconds in visibility.items():
        assert seconds["EXPRESS"] >= 6 * timeout["EXPRESS"], queue


def test_standard_limit_gets_the_rate_parameter(cfn: dict[str, Any]) -> None:
    # WHEN the classifier's variables and the rate parameter are read
    variables = cfn["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    parameter = cfn["Parameters"]["DetectLabelsRate"]

    # THEN the rate is the parameter itself, and its bounds are the ones the function accepts
    # (no deployable value fails its cold start); the limit is shared by every invocation, so
    # the function needs no mapping's concurrency
    assert variables["DETECT_LABELS_RATE"] == {"Ref": "DetectLabelsRate"}
    assert "CLASSIFIER_MAX_CONCURRENCY" not in variables
    assert (parameter["MinValue"], parameter["MaxValue"]) == (0, MAX_DETECT_LABELS_RATE)


@pytest.mark.parametrize(
    "rate",
    [
        pytest.param(None, id="template-default"),
        # The bench's default quota, and the least rate the function accepts.
        pytest.param(BenchOptions().quota_tps, id="bench-quota"),
        pytest.param(1.0, id="least-rate"),
    ],
)
def test_standard_timeout_fits_a_full_batch_of_limited_starts(
    cfn: dict[str, Any], rate: float | None
) -> None:
    # GIVEN the STANDARD classifier deployed with the template's default rate, as the bench
    # deploys it, or at the least rate
    timeout = by_workflow_type(cfn["Resources"]["ClassifierFunction"]["Properties"]["Timeout"])
    rate = float(cfn["Parameters"]["DetectLabelsRate"]["Default"]) if rate is None else rate
    batch_sizes = {
        by_workflow_type(mapping["Properties"]["BatchSize"])["STANDARD"]
        for mapping in resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    }

    # WHEN one invocation starts a full batch of new images alone: floor(rate) a window, so
    # its last start comes at most one window later than the rate itself would allow
    (batch_size,) = batch_sizes
    windows = math.ceil(batch_size / math.floor(rate))
    last_start_seconds = windows + RETRY_JITTER_SECONDS * (windows - 1)

    # THEN the last start still leaves the start margin before the timeout: no record of a
    # full batch is deferred unless other invocations take the windows
    assert last_start_seconds + START_MARGIN_SECONDS <= timeout["STANDARD"]


def test_each_route_queue_dead_letters_after_five_receives(cfn: dict[str, Any]) -> None:
    for queue, dead_letter_queue in ROUTE_QUEUES.items():
        # WHEN the route queue's redrive policy is read
        properties = cfn["Resources"][queue]["Properties"]

        # THEN it moves a message to its own DLQ after 5 receives
        assert properties["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_queue, "Arn"]},
            "maxReceiveCount": 5,
        }
        assert properties["SqsManagedSseEnabled"] is True
        # AND the DLQ keeps messages for the 14-day maximum
        dlq = cfn["Resources"][dead_letter_queue]["Properties"]
        assert dlq == {
            "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        }
    for dead_letter_queue in ("WorkflowDeadLetterQueue", "ProducerDeadLetterQueue"):
        assert cfn["Resources"][dead_letter_queue]["Properties"] == {
            "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        }


def test_event_source_mappings_report_batch_item_failures(cfn: dict[str, Any]) -> None:
    # WHEN the classifier's SQS mappings are read
    mappings = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping")

    # THEN each reports partial failures and caps concurrency, and batches one message under
    # EXPRESS (each invocation waits for its execution, so MaximumConcurrency is exactly the
    # number of images in flight, and a batch of one is full at once: no batching window) and
    # 10 under STANDARD (whose starts are asynchronous, gathered for up to 5 s)
    assert len(mappings) == 2
    for mapping in mappings.values():
        properties = dict(mapping["Properties"])
        properties.pop("EventSourceArn")
        assert properties == {
            "FunctionName": {"Ref": "ClassifierFunction"},
            "BatchSize": {"Fn::If": ["IsExpress", 1, 10]},
            "MaximumBatchingWindowInSeconds": {"Fn::If": ["IsExpress", 0, 5]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": {"Ref": "ClassifierMaxConcurrency"}},
        }


# ------------------------------------------------------------------------ contract


def test_functions_follow_the_contract(sam: dict[str, Any]) -> None:
    # WHEN each function's handler, timeout and environment names are read
    resources = sam["Resources"]
    found = {
        name: (
            resources[name]["Properties"]["Handler"],
            resources[name]["Properties"]["Timeout"],
            sorted(resources[name]["Properties"]["Environment"]["Variables"]),
        )
        for name in (
            "ProducerFunction",
            "ClassifierFunction",
            "FetchImageFunction",
            "StoreResultFunction",
            "ExecutionCloserFunction",
        )
    }

    # THEN they are the ones docs/architecture.md lists
    assert found == {
        "ProducerFunction": (
            "producer.app.lambda_handler",
            55,
            sorted(
                [
                    "POWERTOOLS_SERVICE_NAME",
                    "HASHTAG_ROUTES",
                    "ROUTE_QUEUE_URLS",
                    "CHECKPOINTS_TABLE",
                    "PRODUCER_DLQ_URL",
                    "POST_SOURCE",
                    "REPLAY_URI",
                    "BEARER_TOKEN_STORE",
                    "BEARER_TOKEN_NAME",
                    "MAX_RESULTS_PER_PAGE",
                ]
            ),
        ),
        "ClassifierFunction": (
            "classifier.app.lambda_handler",
            {"Fn::If": ["IsExpress", 360, 60]},
            sorted(
                [
                    "POWERTOOLS_SERVICE_NAME",
                    "RESULTS_TABLE",
                    "STATE_MACHINE_ARN",
                    "WORKFLOW_TYPE",
                    "WORKFLOW_DLQ_URL",
                    "ROUTE_DLQ_URLS",
                    "ROUTE_DLQ_URLS_BY_ROUTE",
                    "CLAIM_LEASE_SECONDS",
                    "DETECT_LABELS_RATE",
                ]
            ),
        ),
        "FetchImageFunction": (
            "fetch_image.app.lambda_handler",
            20,
            sorted(
                [
                    "POWERTOOLS_SERVICE_NAME",
                    "ALLOWED_IMAGE_HOSTS",
                    "EXTRA_ALLOWED_NETWORKS",
                    "MAX_IMAGE_BYTES",
                    "CONNECT_TIMEOUT_SECONDS",
                    "READ_TIMEOUT_SECONDS",
                ]
            ),
        ),
        "StoreResultFunction": (
            "store_result.app.lambda_handler",
            10,
            ["POWERTOOLS_SERVICE_NAME", "RESULTS_TABLE"],
        ),
        "ExecutionCloserFunction": (
            "execution_closer.app.lambda_handler",
            60,
            sorted(
                [
                    "POWERTOOLS_SERVICE_NAME",
                    "RESULTS_TABLE",
                    "OPEN_CLAIMS_INDEX",
                    "STATE_MACHINE_ARN",
                    "WORKFLOW_DLQ_URL",
                ]
            ),
        ),
    }
    globals_ = sam["Globals"]["Function"]
    assert (globals_["CodeUri"], globals_["Runtime"], globals_["Architectures"]) == (
        "functions/",
        "python3.12",
        ["arm64"],
    )
    assert (REPO / "functions" / "requirements.txt").is_file()


def test_route_dlq_urls_are_keyed_by_route_queue_arn(sam: dict[str, Any]) -> None:
    # WHEN the classifier's ROUTE_DLQ_URLS is read
    value = sam["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"][
        "ROUTE_DLQ_URLS"
    ]["Fn::Sub"]

    # THEN it maps each route queue's ARN to its own DLQ's URL
    assert json.loads(value) == {
        f"${{{queue}.Arn}}": f"${{{dead_letter_queue}}}"
        for queue, dead_letter_queue in ROUTE_QUEUES.items()
    }


def test_route_dlq_urls_by_route_name_the_same_queues_by_route(sam: dict[str, Any]) -> None:
    # WHEN the classifier's ROUTE_DLQ_URLS_BY_ROUTE and the producer's ROUTE_QUEUE_URLS are read
    resources = sam["Resources"]
    classifier = resources["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    producer = resources["ProducerFunction"]["Properties"]["Environment"]["Variables"]
    by_route = json.loads(classifier["ROUTE_DLQ_URLS_BY_ROUTE"]["Fn::Sub"])
    queues = json.loads(producer["ROUTE_QUEUE_URLS"]["Fn::Sub"])

    # THEN each route the producer publishes to has the DLQ of its own queue, and no other
    assert by_route == {
        route: "${" + ROUTE_QUEUES[queue.strip("${}")] + "}" for route, queue in queues.items()
    }


def test_schedule_is_switched_by_a_parameter(cfn: dict[str, Any], sam: dict[str, Any]) -> None:
    # WHEN the producer's schedule rule is read
    rule = resources_of_type(cfn, "AWS::Events::Rule")["ProducerFunctionEveryMinute"]

    # THEN it runs every minute, enabled only when ScheduleEnabled is true (off by default)
    properties = rule["Properties"]
    assert properties["ScheduleExpression"] == "rate(1 minute)"
    assert properties["State"] == {"Fn::If": ["IsScheduleEnabled", "ENABLED", "DISABLED"]}
    assert sam["Parameters"]["ScheduleEnabled"]["Default"] == "false"


def test_workflow_defaults_to_express_logging_errors_only(sam: dict[str, Any]) -> None:
    # WHEN the workflow's parameters are read
    parameters = sam["Parameters"]

    # THEN a plain `sam deploy` gets EXPRESS, the measured choice (README, Benchmark), logging
    # failures only (ALL would bill every event and write post text to the logs)
    assert parameters["WorkflowType"]["Default"] == "EXPRESS"
    assert parameters["WorkflowType"]["AllowedValues"] == ["STANDARD", "EXPRESS"]
    assert parameters["ExpressLogLevel"]["Default"] == "ERROR"


def test_every_allowed_value_reads_as_a_string(sam: dict[str, Any]) -> None:
    # WHEN every parameter's AllowedValues is read with SAM CLI's YAML 1.1 loader, where a bare
    # OFF, on, yes or no is a boolean
    allowed = {
        name: definition["AllowedValues"]
        for name, definition in sam["Parameters"].items()
        if "AllowedValues" in definition
    }

    # THEN each value is the string written, so the value a user passes can match it
    assert {
        name: [value for value in values if not isinstance(value, str)]
        for name, values in allowed.items()
    } == {name: [] for name in allowed}
    assert allowed["ExpressLogLevel"] == ["ALL", "ERROR", "FATAL", "OFF"]


def test_the_local_cloud_accepts_every_express_log_level(sam: dict[str, Any]) -> None:
    # GIVEN ExpressLogLevel as template.yaml declares it
    definition = sam["Parameters"]["ExpressLogLevel"]

    # WHEN each level the README names is checked as `tweetlens up --param` checks it
    # THEN none is refused (a bare OFF read as false refused ExpressLogLevel=OFF)
    for level in ("ALL", "ERROR", "FATAL", "OFF"):
        check_parameter_value("ExpressLogLevel", definition, level)


def test_closer_hears_every_unsuccessful_end_and_sweeps_always(cfn: dict[str, Any]) -> None:
    # WHEN the execution closer's two rules are read
    rules = resources_of_type(cfn, "AWS::Events::Rule")
    ended = rules["ExecutionCloserFunctionExecutionEnded"]["Properties"]
    sweep = rules["ExecutionCloserFunctionSweepExpiredClaims"]["Properties"]

    # THEN one matches this state machine's FAILED, TIMED_OUT and ABORTED status changes
    assert ended["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["FAILED", "TIMED_OUT", "ABORTED"],
            "stateMachineArn": [{"Ref": "ClassifyImageStateMachine"}],
        },
    }
    assert ended["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ExecutionCloserFunction", "Arn"]}
    # AND the other sweeps every 5 minutes whatever ScheduleEnabled says (the backstop for
    # events delivered best effort)
    assert sweep["ScheduleExpression"] == "rate(5 minutes)"
    assert sweep.get("State", "ENABLED") == "ENABLED"


def test_outputs_name_every_queue_table_bucket_function_and_the_state_machine(
    sam: dict[str, Any],
) -> None:
    # WHEN the outputs are listed
    outputs = set(sam["Outputs"])

    # THEN tools and the local cloud find every resource they address by name
    assert outputs == {
        "CatsQueueUrl",
        "DogsQueueUrl",
        "CatsDeadLetterQueueUrl",
        "DogsDeadLetterQueueUrl",
        "WorkflowDeadLetterQueueUrl",
        "ProducerDeadLetterQueueUrl",
        "ResultsTableName",
        "CheckpointsTableName",
        "ImagesBucketName",
        "ClassifyImageStateMachineArn",
        "ProducerFunctionName",
        "ClassifierFunctionName",
        "FetchImageFunctionName",
        "StoreResultFunctionName",
        "ExecutionCloserFunctionName",
        "AlarmTopicArn",
    }


# ------------------------------------------------------------------------ state machine


def test_every_placeholder_has_a_substitution_and_vice_versa(
    sam: dict[str, Any], asl: dict[str, Any]
) -> None:
    # WHEN the ${...} placeholders of the ASL and the template's substitutions are compared
    placeholders = set(SUBSTITUTION.findall(ASL_PATH.read_text(encoding="utf-8")))
    properties = sam["Resources"]["ClassifyImageStateMachine"]["Properties"]

    # THEN they are the same names, the ones the contract lists
    assert placeholders == set(properties["DefinitionSubstitutions"])
    assert placeholders == {
        "ResultsTableName",
        "ImagesBucketName",
        "FetchImageFunctionArn",
        "StoreResultFunctionArn",
        "MaxLabels",
        "MinConfidence",
    }
    assert properties["DefinitionUri"] == "statemachine/classify_image.asl.json"


def test_retries_only_transient_errors_with_capped_jittered_backoff(asl: dict[str, Any]) -> None:
    # WHEN every Retry of every state is read
    retriers = [
        (name, retrier)
        for name, state, _ in all_states(asl["States"])
        for retrier in state.get("Retry", [])
    ]

    # THEN none retries States.ALL or a permanent error, and each backs off with full jitter
    assert retriers
    for name, retrier in retriers:
        assert set(retrier["ErrorEquals"]) <= TRANSIENT_ERRORS, name
        assert retrier["BackoffRate"] > 1, name
        assert retrier["MaxDelaySeconds"] >= retrier["IntervalSeconds"], name
        assert retrier["JitterStrategy"] == "FULL", name


def test_only_duplicates_are_caught_and_failures_end_the_execution(asl: dict[str, Any]) -> None:
    # WHEN every Catch of every state is read
    catches = {
        name: [(catcher["ErrorEquals"], catcher["Next"]) for catcher in state.get("Catch", [])]
        for name, state, _ in all_states(asl["States"])
    }

    # THEN only "someone else owns this URL" is caught (into Duplicate); every other error
    # ends the execution, which ExecutionCloserFunction dead-letters from its status change
    assert {name: found for name, found in catches.items() if found} == {
        "Claim Image": [(["DynamoDB.ConditionalCheckFailedException"], "Duplicate")],
        "Store Result": [(["ClaimLost"], "Duplicate")],
    }


def worst_case_seconds(state: dict[str, Any]) -> float:
    """The longest a Task can take: every attempt to its timeout, every retry wait at its cap.

    Each retrier counts its own attempts, so they add up across retriers.
    """
    attempts = 1 + sum(retrier["MaxAttempts"] for retrier in state.get("Retry", []))
    waits = 0.0
    for retrier in state.get("Retry", []):
        for retry in range(retrier["MaxAttempts"]):
            delay = retrier["IntervalSeconds"] * retrier["BackoffRate"] ** retry
            waits += min(delay, retrier["MaxDelaySeconds"])
    return float(attempts * state["TimeoutSeconds"]) + waits


def test_every_retry_budget_fits_in_the_workflow_timeout(asl: dict[str, Any]) -> None:
    # WHEN the worst-case time of the longest path is computed from the ASL
    tasks = {name: state for name, state, _ in all_states(asl["States"]) if state["Type"] == "Task"}
    longest = sum(worst_case_seconds(state) for state in tasks.values())

    # THEN every task has a timeout, and together they fit in the workflow's timeout, which
    # fits in Express's 5-minute limit
    assert all("TimeoutSeconds" in state for state in tasks.values())
    assert longest <= asl["TimeoutSeconds"] <= EXPRESS_LIMIT_SECONDS, longest


def test_lease_follows_the_workflow_timeout(sam: dict[str, Any], asl: dict[str, Any]) -> None:
    # WHEN the definition's timeout and the classifier's lease are compared
    variables = sam["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"]

    # THEN a claim older than the lease belongs to an execution that cannot be running,
    # Standard or Express
    assert int(variables["CLAIM_LEASE_SECONDS"]) == asl["TimeoutSeconds"] + LEASE_MARGIN_SECONDS
    assert asl["TimeoutSeconds"] <= EXPRESS_LIMIT_SECONDS


def test_lambda_task_timeouts_equal_their_functions(
    sam: dict[str, Any], asl: dict[str, Any]
) -> None:
    # WHEN each Lambda task's timeout is compared with its function's
    functions = {
        "Fetch Image": "FetchImageFunction",
        "Store Result": "StoreResultFunction",
    }

    # THEN the state waits exactly as long as the function may run
    for state, function in functions.items():
        timeout = sam["Resources"][function]["Properties"]["Timeout"]
        assert asl["States"][state]["TimeoutSeconds"] == timeout, state


def test_only_the_classifier_starts_executions(cfn: dict[str, Any]) -> None:
    # WHEN every role's statements granting states:StartExecution or StartSyncExecution
    starters = {
        role
        for role, statement in role_statements(cfn)
        if {"states:StartExecution", "states:StartSyncExecution"}
        & set(as_list(statement["Action"]))
    }

    # THEN only the classifier, which validates every input with pydantic, may start one
    assert starters == {"ClassifierFunctionRole"}


def test_state_machine_logs_and_traces_without_execution_data(sam: dict[str, Any]) -> None:
    # WHEN the state machine's properties are read
    properties = copy.deepcopy(sam["Resources"]["ClassifyImageStateMachine"]["Properties"])

    # THEN its type is a parameter, it is traced, and its logs keep errors but no post text
    assert properties["Type"] == {"Ref": "WorkflowType"}
    assert properties["Tracing"] == {"Enabled": True}
    # (an EXPRESS stack logs at ExpressLogLevel, with data only at ALL)
    assert properties["Logging"]["Level"] == {
        "Fn::If": ["IsExpress", {"Ref": "ExpressLogLevel"}, "ERROR"]
    }
    assert properties["Logging"]["IncludeExecutionData"] == {
        "Fn::If": ["LogsExpressExecutionData", True, False]
    }


def alarm_summary(properties: dict[str, Any]) -> tuple[Any, ...]:
    """What a single-metric alarm watches and when it fires, as one comparable row."""
    [dimension] = properties["Dimensions"]
    return (
        properties["Namespace"],
        properties["MetricName"],
        dimension["Name"],
        dimension["Value"],
        properties["Statistic"],
        properties["Period"],
        properties["EvaluationPeriods"],
        properties.get("DatapointsToAlarm"),
        properties["ComparisonOperator"],
        properties["Threshold"],
        properties["TreatMissingData"],
    )


def any_above_zero_in_5_minutes(
    namespace: str, metric: str, dimension: str, value: Any, statistic: str = "Sum"
) -> tuple[Any, ...]:
    return (
        namespace,
        metric,
        dimension,
        value,
        statistic,
        300,
        1,
        None,
        "GreaterThanThreshold",
        0,
        "notBreaching",
    )


def queue_name(queue: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [queue, "QueueName"]}


def function_ref(function: str) -> dict[str, str]:
    return {"Ref": function}


DEAD_LETTER_QUEUES = (
    "CatsDeadLetterQueue",
    "DogsDeadLetterQueue",
    "WorkflowDeadLetterQueue",
    "ProducerDeadLetterQueue",
)
FUNCTION_PREFIXES = {
    "ProducerFunction": "Producer",
    "ClassifierFunction": "Classifier",
    "FetchImageFunction": "FetchImage",
    "StoreResultFunction": "StoreResult",
    "ExecutionCloserFunction": "ExecutionCloser",
}
# Half of the dead-letter queues' 14-day retention.
DEAD_LETTER_MAX_AGE_SECONDS = 7 * 86_400
# The state machine tasks: their alarms watch the share of failed invocations.
RATE_ALARMED_FUNCTIONS = ("FetchImageFunction", "StoreResultFunction")


def test_single_metric_alarms_watch_queues_executions_and_functions(
    cfn: dict[str, Any],
) -> None:
    # WHEN every alarm on a single metric is summarised
    alarms = resources_of_type(cfn, "AWS::CloudWatch::Alarm")
    watched = {
        name: alarm_summary(alarm["Properties"])
        for name, alarm in alarms.items()
        if "MetricName" in alarm["Properties"]
    }

    # THEN each DLQ alarms on any visible letter and on a letter older than a week; the
    # state machine on any failure, timeout or abort; every function on any throttle, the
    # producer on failed runs in 3 of 5 minutes, the classifier and the closer on any error;
    # and the producer on a checkpoint that has not moved (see the stall test)
    stall = cfn["Resources"]["ProducerCheckpointStalledAlarm"]["Properties"]
    assert watched == {
        **{
            f"{queue}Alarm": any_above_zero_in_5_minutes(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                queue_name(queue),
                "Maximum",
            )
            for queue in DEAD_LETTER_QUEUES
        },
        **{
            f"{queue}AgeAlarm": (
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                "QueueName",
                queue_name(queue),
                "Maximum",
                300,
                1,
                None,
                "GreaterThanThreshold",
                DEAD_LETTER_MAX_AGE_SECONDS,
                "notBreaching",
            )
            for queue in DEAD_LETTER_QUEUES
        },
        **{
            f"Executions{outcome}Alarm": any_above_zero_in_5_minutes(
                "AWS/States",
                f"Executions{outcome}",
                "StateMachineArn",
                {"Ref": "ClassifyImageStateMachine"},
            )
            for outcome in ("Failed", "TimedOut", "Aborted")
        },
        **{
            f"{prefix}ThrottlesAlarm": any_above_zero_in_5_minutes(
                "AWS/Lambda", "Throttles", "FunctionName", function_ref(function)
            )
            for function, prefix in FUNCTION_PREFIXES.items()
        },
        "ProducerErrorsAlarm": (
            "AWS/Lambda",
            "Errors",
            "FunctionName",
            function_ref("ProducerFunction"),
            "Sum",
            60,
            5,
            3,
            "GreaterThanThreshold",
            0,
            "notBreaching",
        ),
        "ClassifierErrorsAlarm": any_above_zero_in_5_minutes(
            "AWS/Lambda", "Errors", "FunctionName", function_ref("ClassifierFunction")
        ),
        "ExecutionCloserErrorsAlarm": any_above_zero_in_5_minutes(
            "AWS/Lambda", "Errors", "FunctionName", function_ref("ExecutionCloserFunction")
        ),
        "ProducerCheckpointStalledAlarm": alarm_summary(stall),
    }


def test_every_alarm_notifies_the_alarm_topic(cfn: dict[str, Any]) -> None:
    # WHEN the alarms' actions are read
    alarms = resources_of_type(cfn, "AWS::CloudWatch::Alarm")

    # THEN each one publishes to AlarmTopic, which AlarmEmail may subscribe to
    assert len(alarms) == 22
    assert {name: alarm["Properties"]["AlarmActions"] for name, alarm in alarms.items()} == {
        name: [{"Ref": "AlarmTopic"}] for name in alarms
    }


def test_every_function_alarms_on_its_errors_and_throttles(cfn: dict[str, Any]) -> None:
    # WHEN the Lambda metrics the alarms watch are listed per function
    functions = resources_of_type(cfn, "AWS::Lambda::Function")
    watched: set[tuple[str, str]] = set()
    for alarm in resources_of_type(cfn, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        stats = [
            query["MetricStat"] for query in properties.get("Metrics", []) if "MetricStat" in query
        ]
        metrics = [stat["Metric"] for stat in stats] or [properties]
        for metric in metrics:
            if metric["Namespace"] == "AWS/Lambda":
                [dimension] = metric["Dimensions"]
                watched.add((dimension["Value"]["Ref"], metric["MetricName"]))

    # THEN every function of the template has both, whatever is added later
    assert set(functions) == set(FUNCTION_PREFIXES)
    assert {(name, metric) for name in functions for metric in ("Errors", "Throttles")} <= watched


@pytest.mark.parametrize("function", RATE_ALARMED_FUNCTIONS)
def test_task_function_errors_alarm_on_the_share_of_failed_invocations(
    cfn: dict[str, Any], function: str
) -> None:
    # WHEN the errors alarm of a state machine task is read
    properties = cfn["Resources"][f"{FUNCTION_PREFIXES[function]}ErrorsAlarm"]["Properties"]

    # THEN it fires when more than half of at least 10 invocations in 5 minutes failed: its
    # named errors are how single images fail, which the workflow alarms already report
    def stat(query_id: str, metric: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": function_ref(function)}],
                },
                "Period": 300,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    assert {key: value for key, value in properties.items() if key != "AlarmDescription"} == {
        "Metrics": [
            stat("errors", "Errors"),
            stat("invocations", "Invocations"),
            {
                "Id": "failed_percent",
                "Expression": "IF(invocations >= 10, 100 * FILL(errors, 0) / invocations, 0)",
                "Label": "Failed invocations (%)",
                "ReturnData": True,
            },
        ],
        "EvaluationPeriods": 1,
        "Threshold": 50,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": "AlarmTopic"}],
    }


def test_stalled_producer_alarm_counts_silence_only_while_the_schedule_runs(
    cfn: dict[str, Any], sam: dict[str, Any]
) -> None:
    # WHEN the producer's stall alarm is read
    alarm = cfn["Resources"]["ProducerCheckpointStalledAlarm"]
    properties = alarm["Properties"]
    producer = sam["Resources"]["ProducerFunction"]["Properties"]["Environment"]["Variables"]
    namespace = sam["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]

    # THEN it exists only when the schedule runs the producer
    assert alarm["Condition"] == "IsScheduleEnabled"
    # AND it watches the metric the producer emits once per run, under the producer's
    # namespace and service
    assert (properties["Namespace"], properties["MetricName"], properties["Dimensions"]) == (
        namespace,
        "CheckpointAdvanced",
        [{"Name": "service", "Value": producer["POWERTOOLS_SERVICE_NAME"]}],
    )
    # AND it fires when none of the last ProducerStallMinutes one-minute periods saw progress,
    # a period without any report (no run, a failed cold start) counting as none
    assert (
        properties["Statistic"],
        properties["Period"],
        properties["EvaluationPeriods"],
        properties["DatapointsToAlarm"],
        properties["ComparisonOperator"],
        properties["Threshold"],
        properties["TreatMissingData"],
    ) == (
        "Sum",
        60,
        {"Ref": "ProducerStallMinutes"},
        {"Ref": "ProducerStallMinutes"},
        "LessThanThreshold",
        1,
        "breaching",
    )
    # AND the default outlasts one X rate-limit window (15 minutes)
    stall_minutes = sam["Parameters"]["ProducerStallMinutes"]
    assert (stall_minutes["Default"], stall_minutes["MinValue"], stall_minutes["MaxValue"]) == (
        20,
        5,
        1440,
    )


# ------------------------------------------------------------------------ deployability


def emulator_template() -> dict[str, Any]:
    """The transformed template with the ASL inlined and its substitutions folded into an
    Fn::Sub, because moto's CloudFormation ignores DefinitionSubstitutions."""
    template = sam_template()
    template["Globals"]["Function"]["CodeUri"] = "s3://tweetlens-artifacts/functions.zip"
    properties = template["Resources"]["ClassifyImageStateMachine"]["Properties"]
    del properties["DefinitionUri"]
    properties["Definition"] = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": REGION}):
        cfn: dict[str, Any] = transform(template, {}, BundledPolicies())
    for resource in resources_of_type(cfn, "AWS::StepFunctions::StateMachine").values():
        machine = resource["Properties"]
        # SAM renders an inline Definition as Fn::Join of its JSON lines.
        separator, lines = machine["DefinitionString"]["Fn::Join"]
        machine["DefinitionString"] = {
            "Fn::Sub": [separator.join(lines), machine.pop("DefinitionSubstitutions")]
        }
    return cfn


@pytest.mark.filterwarnings("ignore:Tried to parse")
@pytest.mark.parametrize(
    ("parameters", "workflow_type"),
    [({}, "EXPRESS"), ({"WorkflowType": "STANDARD"}, "STANDARD")],
    ids=["default", "standard"],
)
def test_stack_creates_in_the_emulator_and_functions_accept_their_environment(
    monkeypatch: pytest.MonkeyPatch, parameters: dict[str, str], workflow_type: str
) -> None:
    # GIVEN an emulated account with the code artifact uploaded
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="tweetlens-artifacts")
        # An empty zip archive: the functions are not invoked here.
        s3.put_object(
            Bucket="tweetlens-artifacts", Key="functions.zip", Body=b"PK\x05\x06" + b"\0" * 18
        )
        cloudformation = boto3.client("cloudformation", region_name=REGION)

        # WHEN the stack is created from the template with default parameters (or STANDARD)
        cloudformation.create_stack(
            StackName="tweetlens-dev",
            TemplateBody=json.dumps(emulator_template()),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )

        # THEN it completes with every output
        stack = cloudformation.describe_stacks(StackName="tweetlens-dev")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
        assert set(outputs) == set(sam_template()["Outputs"])
        # AND each function's settings model accepts the environment the stack gave it
        physical = {
            summary["LogicalResourceId"]: summary["PhysicalResourceId"]
            for summary in cloudformation.list_stack_resources(StackName="tweetlens-dev")[
                "StackResourceSummaries"
            ]
        }
        lambda_client = boto3.client("lambda", region_name=REGION)

        def environment(function: str) -> dict[str, str]:
            configuration = lambda_client.get_function_configuration(
                FunctionName=physical[function]
            )
            variables: dict[str, str] = configuration["Environment"]["Variables"]
            return variables

        producer = ProducerSettings.from_environ(environment("ProducerFunction"))
        classifier = load_settings(environment("ClassifierFunction"))
        fetch = FetchSettings.from_environ(environment("FetchImageFunction"))
        assert producer.checkpoints_table == physical["CheckpointsTable"]
        assert producer.producer_dlq_url == outputs["ProducerDeadLetterQueueUrl"]
        assert classifier.state_machine_arn == physical["ClassifyImageStateMachine"]
        assert classifier.claim_lease_seconds == 330
        assert classifier.workflow_type == workflow_type
        # AND the emulator resolved the mappings' batch size and the timeout for the workflow
        # type: one record per EXPRESS invocation
        express = workflow_type == "EXPRESS"
        mappings = lambda_client.list_event_source_mappings(
            FunctionName=physical["ClassifierFunction"]
        )["EventSourceMappings"]
        assert [mapping["BatchSize"] for mapping in mappings] == [1 if express else 10] * 2
        assert lambda_client.get_function_configuration(
            FunctionName=physical["ClassifierFunction"]
        )["Timeout"] == (360 if express else 60)
        closer = load_closer_settings(environment("ExecutionCloserFunction"))
        assert closer.workflow_dlq_url == outputs["WorkflowDeadLetterQueueUrl"]
        assert closer.state_machine_arn == outputs["ClassifyImageStateMachineArn"]
        store = load_store_settings(environment("StoreResultFunction"))
        assert store.results_table == physical["ResultsTable"]
        assert sorted(classifier.route_dlq_urls.values()) == sorted(
            [outputs["CatsDeadLetterQueueUrl"], outputs["DogsDeadLetterQueueUrl"]]
        )
        assert classifier.route_dlq_urls_by_route == {
            "cats": outputs["CatsDeadLetterQueueUrl"],
            "dogs": outputs["DogsDeadLetterQueueUrl"],
        }
        assert {classifier.route_of_queue(arn) for arn in classifier.route_dlq_urls} == {
            "cats",
            "dogs",
        }
        assert fetch.max_image_bytes == 15_728_640
        # AND the state machine got its definition with every substitution made
        described = boto3.client("stepfunctions", region_name=REGION).describe_state_machine(
            stateMachineArn=outputs["ClassifyImageStateMachineArn"]
        )
        assert "${" not in described["definition"]
        store_state = json.loads(described["definition"])["States"]["Store Result"]
        assert store_state["Parameters"]["FunctionName"].endswith(
            ":function:" + outputs["StoreResultFunctionName"]
        )


class InProcessEmulator:
    """What the local cloud's deployer asks of its emulator, answered by moto in this process."""

    region = REGION

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@pytest.mark.filterwarnings("ignore:Tried to parse")
@pytest.mark.parametrize(("schedule_enabled", "stall_alarms"), [("true", 1), ("false", 0)])
def test_local_cloud_creates_every_alarm_the_schedule_calls_for(
    monkeypatch: pytest.MonkeyPatch, schedule_enabled: str, stall_alarms: int
) -> None:
    # GIVEN an emulated account, and the template prepared by the local cloud with the
    # schedule on or off
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        prepared = prepare(TEMPLATE_PATH, {"ScheduleEnabled": schedule_enabled}, REGION)
        deployer = Deployer(cast("Emulator", InProcessEmulator()))

        # WHEN the local cloud creates the stack, then the resources it creates itself (the
        # alarms among them) through the service APIs
        deployer._upload(prepared.packaged.uploads)
        deployer._create_stack("tweetlens-dev", prepared.template, prepared.parameters)
        created = deployer._create_emulated(
            "tweetlens-dev", prepared.template, deployer._moto_resource_map("tweetlens-dev")
        )

        # THEN every alarm was accepted by CloudWatch, the stall alarm only with the schedule
        described = boto3.client("cloudwatch", region_name=REGION).describe_alarms()
        alarms = {alarm["AlarmName"]: alarm for alarm in described["MetricAlarms"]}
        expected = {
            name
            for name, resource in sam_template()["Resources"].items()
            if resource["Type"] == "AWS::CloudWatch::Alarm"
        }
        if not stall_alarms:
            expected.discard("ProducerCheckpointStalledAlarm")
        assert {name for name in created if name in expected} == expected
        assert set(alarms) == {created[name] for name in expected}
        # AND the metric math and the parameter-sized periods arrived as written
        fetch = alarms[created["FetchImageErrorsAlarm"]]
        assert [query["Id"] for query in fetch["Metrics"]] == [
            "errors",
            "invocations",
            "failed_percent",
        ]
        stalled = [
            alarm for alarm in alarms.values() if alarm.get("MetricName") == "CheckpointAdvanced"
        ]
        assert [
            (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["TreatMissingData"])
            for alarm in stalled
        ] == [(20, 20, "breaching")] * stall_alarms


def test_classifier_polls_and_writes_only_its_own_resources(cfn: dict[str, Any]) -> None:
    # WHEN the classifier role's statements are read
    statements = {
        statement["Sid"]: (as_list(statement["Action"]), statement["Resource"])
        for role, statement in role_statements(cfn)
        if role == "ClassifierFunctionRole"
    }

    # THEN it may poll the two route queues (the mapping's documented needs, no more), start
    # the workflow, see whether a claim's owner runs, read results, mark rejections,
    # dead-letter poison messages to the route DLQs and (EXPRESS) shorten the visibility of a
    # record left for redelivery on the route queues only, and nothing else
    assert statements == {
        "PollRouteQueues": (
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            [{"Fn::GetAtt": ["CatsQueue", "Arn"]}, {"Fn::GetAtt": ["DogsQueue", "Arn"]}],
        ),
        "StartClassifications": (["states:StartExecution"], {"Ref": "ClassifyImageStateMachine"}),
        "RunClassifications": (["states:StartSyncExecution"], {"Ref": "ClassifyImageStateMachine"}),
        "CheckClaimOwners": (
            ["states:DescribeExecution"],
            {
                "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                ":execution:${ClassifyImageStateMachine.Name}:*"
            },
        ),
        "ReadResults": (["dynamodb:BatchGetItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "MarkRejections": (["dynamodb:UpdateItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "LimitStarts": (["dynamodb:UpdateItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "SendPoisonToRouteDeadLetterQueues": (
            ["sqs:SendMessage"],
            [
                {"Fn::GetAtt": ["CatsDeadLetterQueue", "Arn"]},
                {"Fn::GetAtt": ["DogsDeadLetterQueue", "Arn"]},
            ],
        ),
        "ReadLetterMarkers": (["dynamodb:GetItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "CloseClaims": (["dynamodb:UpdateItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "SendToWorkflowDeadLetterQueue": (
            ["sqs:SendMessage"],
            {"Fn::GetAtt": ["WorkflowDeadLetterQueue", "Arn"]},
        ),
        "BackOffTransientRecords": (
            ["sqs:ChangeMessageVisibility"],
            [{"Fn::GetAtt": ["CatsQueue", "Arn"]}, {"Fn::GetAtt": ["DogsQueue", "Arn"]}],
        ),
    }


def classifier_sids_by_workflow_type(cfn: dict[str, Any]) -> dict[str, set[str]]:
    """The classifier role's statement ids as a stack of each workflow type has them."""
    role = cfn["Resources"]["ClassifierFunctionRole"]["Properties"]
    [policy] = role["Policies"]
    found: dict[str, set[str]] = {"EXPRESS": set(), "STANDARD": set()}
    for statement in policy["PolicyDocument"]["Statement"]:
        if "Fn::If" not in statement:
            for sids in found.values():
                sids.add(statement["Sid"])
            continue
        for workflow_type, side in by_workflow_type(statement).items():
            if side != {"Ref": "AWS::NoValue"}:
                found[workflow_type].add(side["Sid"])
    return found


def test_classifier_role_follows_the_workflow_type(cfn: dict[str, Any]) -> None:
    # WHEN the classifier role is read as each workflow type deploys it
    found = classifier_sids_by_workflow_type(cfn)

    # THEN STANDARD starts and describes executions and counts its starts; EXPRESS runs
    # them synchronously, closes them itself (markers, claims, workflow letters) and backs
    # off a transiently failed record, and neither has the other's
    common = {
        "PollRouteQueues",
        "ReadResults",
        "MarkRejections",
        "SendPoisonToRouteDeadLetterQueues",
    }
    assert found == {
        "STANDARD": common | {"StartClassifications", "CheckClaimOwners", "LimitStarts"},
        "EXPRESS": common
        | {
            "RunClassifications",
            "ReadLetterMarkers",
            "CloseClaims",
            "SendToWorkflowDeadLetterQueue",
            "BackOffTransientRecords",
        },
    }


def test_express_classifier_touches_only_markers_and_result_items(cfn: dict[str, Any]) -> None:
    # WHEN the EXPRESS-only DynamoDB statements of the classifier are read
    conditions = {
        statement["Sid"]: statement["Condition"]
        for role, statement in role_statements(cfn)
        if role == "ClassifierFunctionRole"
        and statement["Sid"] in {"ReadLetterMarkers", "CloseClaims"}
    }

    # THEN markers are read by their prefix and only result items (keyed by URL) are closed
    assert conditions == {
        "ReadLetterMarkers": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["REJECTION#*"]}},
        "CloseClaims": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["https://*"]}},
    }


def policy_statements_of(cfn: dict[str, Any], role_name: str) -> dict[str, tuple[list[str], Any]]:
    return {
        statement["Sid"]: (as_list(statement["Action"]), statement["Resource"])
        for role, statement in role_statements(cfn)
        if role == role_name
    }


def test_store_result_writes_only_the_results_table(cfn: dict[str, Any]) -> None:
    # WHEN the store function's statements are read
    # THEN it may read label keys and write the result and label items of one table, no more
    assert policy_statements_of(cfn, "StoreResultFunctionRole") == {
        "WriteResultWithLabels": (
            ["dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
            {"Fn::GetAtt": ["ResultsTable", "Arn"]},
        )
    }


def test_closer_reads_executions_and_writes_only_letters_and_claims(cfn: dict[str, Any]) -> None:
    # WHEN the execution closer's statements are read
    # THEN it may find expired claims through the index, close claims, read this state
    # machine's executions and send to the workflow DLQ, and nothing else
    assert policy_statements_of(cfn, "ExecutionCloserFunctionRole") == {
        "FindExpiredClaims": (
            ["dynamodb:Query"],
            {"Fn::Sub": "${ResultsTable.Arn}/index/OpenClaims"},
        ),
        "CloseClaims": (["dynamodb:UpdateItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "ReadEndedExecutions": (
            ["states:DescribeExecution", "states:GetExecutionHistory"],
            {
                "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                ":execution:${ClassifyImageStateMachine.Name}:*"
            },
        ),
        "SendToWorkflowDeadLetterQueue": (
            ["sqs:SendMessage"],
            {"Fn::GetAtt": ["WorkflowDeadLetterQueue", "Arn"]},
        ),
    }


def test_state_machine_claims_invokes_and_labels_only(cfn: dict[str, Any]) -> None:
    # WHEN the state machine's own statements are read (log delivery aside)
    statements = policy_statements_of(cfn, "ClassifyImageStateMachineRole")
    statements.pop("DeliverExecutionLogs")

    # THEN it claims in the table, invokes its two tasks, reads images and labels them: it
    # no longer writes results or dead letters itself
    assert statements == {
        "InvokeTasks": (
            ["lambda:InvokeFunction"],
            [
                {"Fn::GetAtt": ["FetchImageFunction", "Arn"]},
                {"Fn::GetAtt": ["StoreResultFunction", "Arn"]},
            ],
        ),
        "ClaimImages": (["dynamodb:UpdateItem"], {"Fn::GetAtt": ["ResultsTable", "Arn"]}),
        "ReadImages": (["s3:GetObject"], {"Fn::Sub": "${ImagesBucket.Arn}/images/*"}),
        "DetectLabels": (["rekognition:DetectLabels"], "*"),
    }


def test_classifier_writes_only_rejection_markers(cfn: dict[str, Any]) -> None:
    # WHEN the classifier's one write permission on the results table is read
    [statement] = [
        statement
        for role, statement in role_statements(cfn)
        if role == "ClassifierFunctionRole" and statement["Sid"] == "MarkRejections"
    ]

    # THEN it is limited to items whose partition key starts with REJECTION#
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["REJECTION#*"]}
    }


def test_every_function_starts_without_looking_for_pydantic_plugins(sam: dict[str, Any]) -> None:
    # WHEN the environment every function inherits is read
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]

    # THEN pydantic's plugin discovery (a read of every installed distribution's entry points
    # at the first model of a cold start) is off: no function uses a plugin
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"


def test_classifier_updates_result_items_only_under_express(cfn: dict[str, Any]) -> None:
    # WHEN the classifier role's UpdateItem statements are read as each workflow type deploys it
    role = cfn["Resources"]["ClassifierFunctionRole"]["Properties"]
    [policy] = role["Policies"]
    updates: dict[str, dict[str, Any]] = {"EXPRESS": {}, "STANDARD": {}}
    for statement in policy["PolicyDocument"]["Statement"]:
        sides = (
            by_workflow_type(statement)
            if "Fn::If" in statement
            else {"EXPRESS": statement, "STANDARD": statement}
        )
        for workflow_type, side in sides.items():
            if side != {"Ref": "AWS::NoValue"} and "dynamodb:UpdateItem" in as_list(side["Action"]):
                updates[workflow_type][side["Sid"]] = (
                    as_list(side["Action"]),
                    side["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                )

    # THEN both write rejection markers; only STANDARD the start windows' counters; only
    # EXPRESS, which reserves and closes claims itself (the reservation before
    # StartSyncExecution), writes result items, keyed by URL, with UpdateItem alone
    markers = (["dynamodb:UpdateItem"], ["REJECTION#*"])
    assert updates == {
        "STANDARD": {
            "MarkRejections": markers,
            "LimitStarts": (["dynamodb:UpdateItem"], ["START_RATE#*"]),
        },
        "EXPRESS": {
            "MarkRejections": markers,
            "CloseClaims": (["dynamodb:UpdateItem"], ["https://*"]),
        },
    }


def test_express_classifier_waits_with_the_least_memory(
    cfn: dict[str, Any], sam: dict[str, Any]
) -> None:
    # WHEN the classifier's memory is read for each workflow type
    memory = by_workflow_type(cfn["Resources"]["ClassifierFunction"]["Properties"]["MemorySize"])

    # THEN EXPRESS, which spends each image waiting for its execution, has Lambda's minimum;
    # STANDARD keeps the functions' default
    assert memory == {"EXPRESS": 128, "STANDARD": sam["Globals"]["Function"]["MemorySize"]}


RESULTS_TABLE_WRITES = {
    "dynamodb:UpdateItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
}


def test_every_write_to_the_results_table_is_limited_to_the_keys_its_writer_writes(
    cfn: dict[str, Any],
) -> None:
    # WHEN every statement granting a write (or the store's Query) on the results table is read
    conditions = {
        (role, statement["Sid"]): statement.get("Condition")
        for role, statement in role_statements(cfn)
        if statement["Resource"] == {"Fn::GetAtt": ["ResultsTable", "Arn"]}
        and RESULTS_TABLE_WRITES & set(as_list(statement["Action"]))
    }

    # THEN each is limited (dynamodb:LeadingKeys) to the partition keys its code writes: result
    # and label items by image URL (the Claim Image state, store_result, the closer and the
    # EXPRESS classifier), the closer's EXECUTION# letter markers, the classifier's REJECTION#
    # markers and START_RATE# counters; none may write the whole table
    def leading(*keys: str) -> dict[str, Any]:
        return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(keys)}}

    assert conditions == {
        ("ClassifyImageStateMachineRole", "ClaimImages"): leading("https://*"),
        ("StoreResultFunctionRole", "WriteResultWithLabels"): leading("https://*"),
        ("ExecutionCloserFunctionRole", "CloseClaims"): leading("https://*", "EXECUTION#*"),
        ("ClassifierFunctionRole", "LimitStarts"): leading("START_RATE#*"),
        ("ClassifierFunctionRole", "MarkRejections"): leading("REJECTION#*"),
        ("ClassifierFunctionRole", "CloseClaims"): leading("https://*"),
    }
