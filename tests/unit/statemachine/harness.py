"""Harness: run the real ClassifyImage ASL in moto's Step Functions interpreter, in process.

The definition is ``statemachine/classify_image.asl.json`` with its DefinitionSubstitutions
applied, the table is built from ``template.yaml``'s ResultsTable, and the Fetch Image and
Store Result tasks run the real ``fetch_image.app`` and ``store_result.app`` handlers. Only
the edges of the world are replaced: the image host (``fetch_image.app.RESOLVER`` /
``OPENER``), Rekognition's answer, and the clock of the retry waits. The execution closer is
driven with status-change events in AWS's shape built from the ended execution.
"""

from __future__ import annotations

import copy
import functools
import importlib
import io
import json
import re
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import JsonRESTError
from moto.rekognition.responses import RekognitionResponse
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from samcli.yamlhelper import yaml_parse

from common.messages import ClassifyRequest, execution_name
from fetch_image.transport import RawResponse
from tweetlens.bench.measure import billed_transitions
from tweetlens.localcloud import DynamoDbRequestFaults, PatchSet
from tweetlens.localcloud import stepfunctions as step_functions_fixes
from tweetlens.localcloud.sfnclients import install_client_cache

REPO = Path(__file__).resolve().parents[3]
ASL_PATH = REPO / "statemachine" / "classify_image.asl.json"
TEMPLATE_PATH = REPO / "template.yaml"
EVENTS = REPO / "events"
RECORDED = Path(__file__).resolve().parent / "recorded"

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STATE_MACHINE_NAME = "ClassifyImage"
RESULTS_TABLE = "tweetlens-results"
IMAGES_BUCKET = "tweetlens-images"
WORKFLOW_DLQ = "tweetlens-workflow-dlq"
FETCH_FUNCTION = "tweetlens-fetch-image"
STORE_FUNCTION = "tweetlens-store-result"
# pbs.twimg.com resolves to Fastly's public ranges; the opener never connects to it.
IMAGE_HOST_ADDRESS = "151.101.244.159"
EXECUTION_DEADLINE_SECONDS = 30.0
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def load_template() -> dict[str, Any]:
    """template.yaml as CloudFormation sees it (intrinsic tags kept as Fn:: mappings).

    A copy of a parse made once per session: parsing costs ~0.4 s, every test deploys.
    """
    return copy.deepcopy(_parsed_template())


@functools.cache
def _parsed_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return parsed


def load_request(name: str) -> ClassifyRequest:
    """An execution input from events/, validated against the contract."""
    return ClassifyRequest.model_validate_json((EVENTS / name).read_text(encoding="utf-8"))


def load_recorded(name: str) -> dict[str, Any]:
    """A recorded service response from recorded/."""
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


def image_bytes(extension: str) -> bytes:
    """A real 120x90 JPEG or PNG (Rekognition needs at least 80 px a side)."""
    pixels = np.full((90, 120, 3), (40, 90, 160), dtype=np.uint8)
    ok, encoded = cv2.imencode(extension, pixels)
    assert ok
    return bytes(encoded.tobytes())


# ------------------------------------------------------------------------ image host
@dataclass
class HostReply:
    """One scripted answer of the image host."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeImageHost:
    """Stands in for pbs.twimg.com behind the fetch function's network seam."""

    replies: list[HostReply] = field(default_factory=list)
    addresses: list[str] = field(default_factory=lambda: [IMAGE_HOST_ADDRESS])
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Runs before each answer: lets a test hold the fetch (timeouts, aborts).
    on_open: Callable[[], None] | None = None

    def serve(self, *replies: HostReply) -> None:
        self.replies.extend(replies)

    def resolve(self, host: str, port: int) -> list[str]:
        return list(self.addresses)

    def open(
        self,
        *,
        address: str,
        port: int,
        host: str,
        target: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> RawResponse:
        self.requests.append({"address": address, "port": port, "host": host, "target": target})
        if self.on_open is not None:
            self.on_open()
        reply = self.replies.pop(0)
        headers = {"content-length": str(len(reply.body)), **reply.headers}
        return RawResponse(
            status=reply.status, headers=headers, chunks=iter([reply.body]), close=lambda: None
        )


# ------------------------------------------------------------------------ lambda runner
@dataclass
class InvocationContext:
    """The attributes of the Lambda context object the handler and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/tweetlens-fetch-image"
    log_stream_name: str = "2026/11/27/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class LambdaRunner:
    """Runs moto Lambda invocations in process with the real handler instead of Docker."""

    handlers: dict[str, Callable[[Any, Any], Any]]
    error_payloads: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        handler = self.handlers[str(function.handler)]
        context = InvocationContext(
            function_name=function.function_name,
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            timeout_seconds=int(function.timeout),
        )
        payload = json.loads(event) if isinstance(event, str | bytes) else event
        try:
            result = handler(payload, context)
        except Exception as error:  # the Python runtime reports every escaping exception
            # The shape the Python runtime gives an unhandled error: Step Functions takes the
            # error name from errorType and the whole payload as the cause.
            error_payload = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            self.error_payloads.append(error_payload)
            return json.dumps(error_payload), True, ""
        return json.dumps(result), False, ""


# ------------------------------------------------------------------------ rekognition
@dataclass
class FakeRekognition:
    """DetectLabels answers in order: a response dict, or an (error code, message) pair."""

    default: dict[str, Any]
    outcomes: list[dict[str, Any] | tuple[str, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Runs while the image is being labelled: lets a test change the world mid-execution.
    on_request: Callable[[], None] | None = None

    def detect_labels(self, body: str) -> str:
        self.requests.append(json.loads(body))
        if self.on_request is not None:
            self.on_request()
        outcome = self.outcomes.pop(0) if self.outcomes else self.default
        if isinstance(outcome, tuple):
            raise JsonRESTError(*outcome)
        return json.dumps(outcome)


# ------------------------------------------------------------------------ the workflow
@dataclass
class ExecutionResult:
    arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None


@dataclass
class Workflow:
    """The deployed state machine and the resources it talks to."""

    sfn: Any
    dynamodb: Any
    s3: Any
    sqs: Any
    state_machine_arn: str
    dead_letter_queue_url: str
    host: FakeImageHost
    rekognition: FakeRekognition
    dynamodb_faults: DynamoDbRequestFaults
    lambdas: LambdaRunner
    retry_waits: list[float]
    substitutions: dict[str, str]

    def run(self, request: ClassifyRequest, sequence: int = 1) -> ExecutionResult:
        """Start an execution named as the classifier names it and wait for its end."""
        return self._run(execution_name(request.message.url, sequence), request.model_dump_json())

    def start(self, request: ClassifyRequest, sequence: int = 1) -> str:
        """Start an execution without waiting; returns its ARN."""
        started = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=execution_name(request.message.url, sequence),
            input=request.model_dump_json(),
        )
        arn: str = started["executionArn"]
        return arn

    def wait(self, arn: str) -> ExecutionResult:
        """Poll an execution until it ends, failing the test past the deadline."""
        deadline = time.monotonic() + EXECUTION_DEADLINE_SECONDS
        while True:
            described = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                pytest.fail(f"execution {arn} still RUNNING after {EXECUTION_DEADLINE_SECONDS} s")
            time.sleep(0.02)
        output = described.get("output")
        return ExecutionResult(
            arn=arn,
            status=described["status"],
            output=json.loads(output) if output is not None else None,
            error=described.get("error"),
            cause=described.get("cause"),
        )

    def run_raw(self, name: str, execution_input: Any) -> ExecutionResult:
        """Start an execution with any JSON input, as a hand-made StartExecution would."""
        return self._run(name, json.dumps(execution_input))

    def _run(self, name: str, execution_input: str) -> ExecutionResult:
        started = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=execution_input
        )
        return self.wait(started["executionArn"])

    def redeploy(self, **overrides: str) -> None:
        """Update the definition with some substitutions changed (a misconfigured stack)."""
        self.substitutions = {**self.substitutions, **overrides}
        self.sfn.update_state_machine(
            stateMachineArn=self.state_machine_arn,
            definition=substituted_definition(self.substitutions),
        )

    def result_item(self, url: str) -> dict[str, Any] | None:
        got = self.dynamodb.Table(RESULTS_TABLE).get_item(
            Key={"pk": url, "sk": "RESULT"}, ConsistentRead=True
        )
        item: dict[str, Any] | None = got.get("Item")
        return item

    def put_result_item(self, item: Mapping[str, Any]) -> None:
        self.dynamodb.Table(RESULTS_TABLE).put_item(Item=dict(item))

    def label_items(self, url: str) -> list[dict[str, Any]]:
        table = self.dynamodb.Table(RESULTS_TABLE)
        found = table.query(
            KeyConditionExpression="pk = :url AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":url": url, ":prefix": "LABEL#"},
        )
        items: list[dict[str, Any]] = found["Items"]
        return items

    def dead_letters(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(
            QueueUrl=self.dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]

    def states_entered(self, execution_arn: str) -> list[str]:
        """Every state entered, in order: each is one billed transition of a Standard workflow."""
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in events["events"]
            if "stateEnteredEventDetails" in event
        ]

    def billed_transitions(self, execution_arn: str) -> int:
        """What a Standard workflow bills for this execution: states entered and retries."""
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        return billed_transitions(events["events"])

    def status_change_event(self, execution_arn: str) -> dict[str, Any]:
        """The "Step Functions Execution Status Change" event AWS sends for this execution.

        Built on events/eventbridge_execution_failed.json (AWS's documented shape) with this
        execution's values, so the closer sees what EventBridge would deliver.
        """
        described = self.sfn.describe_execution(executionArn=execution_arn)
        event: dict[str, Any] = json.loads(
            (EVENTS / "eventbridge_execution_failed.json").read_text(encoding="utf-8")
        )
        stop = described.get("stopDate")
        event["resources"] = [execution_arn]
        event["detail"].update(
            {
                "executionArn": execution_arn,
                "stateMachineArn": self.state_machine_arn,
                "name": described["name"],
                "status": described["status"],
                "startDate": int(described["startDate"].timestamp() * 1000),
                "stopDate": int(stop.timestamp() * 1000) if stop is not None else None,
                "input": described.get("input"),
                "output": described.get("output"),
                "error": described.get("error"),
                "cause": described.get("cause"),
            }
        )
        return event


def substituted_definition(substitutions: Mapping[str, str]) -> str:
    """The ASL with ``${Name}`` replaced, as CloudFormation does with DefinitionSubstitutions."""
    text = ASL_PATH.read_text(encoding="utf-8")
    missing = set(SUBSTITUTION.findall(text)) - set(substitutions)
    assert not missing, f"no substitution for {sorted(missing)}"
    return SUBSTITUTION.sub(lambda match: substitutions[match.group(1)], text)


class _IgnoreStatusChanges:
    """The harness reads statuses from DescribeExecution; no events are delivered here."""

    def changing(self) -> AbstractContextManager[None]:
        return nullcontext()

    def __call__(self, execution: Any, status: str) -> None:
        return None


def fast_retry_waits(patches: PatchSet) -> list[float]:
    """Record the interpreter's Retry waits instead of sleeping them; returns the record."""
    waits: list[float] = []
    # retrier_decl calls time.sleep(interval) through its own module reference to ``time``;
    # replacing that reference leaves every other sleep in the process alone.
    patches.replace(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


def fetch_function_environment(template: Mapping[str, Any]) -> dict[str, str]:
    """FetchImageFunction's variables with the template's parameter defaults resolved."""
    parameters = template["Parameters"]
    function = template["Resources"]["FetchImageFunction"]["Properties"]
    environment: dict[str, str] = {}
    for name, value in function["Environment"]["Variables"].items():
        if isinstance(value, dict):
            environment[name] = str(parameters[value["Ref"]]["Default"])
        else:
            environment[name] = str(value)
    environment["POWERTOOLS_METRICS_NAMESPACE"] = template["Globals"]["Function"]["Environment"][
        "Variables"
    ]["POWERTOOLS_METRICS_NAMESPACE"]
    return environment


@functools.cache
def code_archive() -> bytes:
    """The fetch function's package, as `sam build` would ship it (source only; made once)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((REPO / "functions").rglob("*.py")):
            archive.write(path, path.relative_to(REPO / "functions").as_posix())
    return buffer.getvalue()


def import_fetch_app(monkeypatch: pytest.MonkeyPatch, environment: Mapping[str, str]) -> ModuleType:
    """fetch_image.app, imported (once) under the function's environment: its cold start."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    module = importlib.import_module("fetch_image.app")
    # The cached S3 client may come from another test's emulator.
    module.s3_client.cache_clear()
    return module


def import_function_app(
    monkeypatch: pytest.MonkeyPatch, module: str, environment: Mapping[str, str]
) -> ModuleType:
    """A function's app module, imported (once) under its environment: its cold start."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
    return importlib.import_module(module)


def create_function(
    template: Mapping[str, Any],
    logical_id: str,
    name: str,
    role_arn: str,
    environment: Mapping[str, str],
) -> str:
    """Create one of the template's functions in moto; returns its ARN."""
    properties = template["Resources"][logical_id]["Properties"]
    globals_ = template["Globals"]["Function"]
    arn: str = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime=globals_["Runtime"],
        Architectures=globals_["Architectures"],
        Role=role_arn,
        Handler=properties["Handler"],
        Timeout=properties["Timeout"],
        MemorySize=globals_["MemorySize"],
        Code={"ZipFile": code_archive()},
        Environment={"Variables": dict(environment)},
    )["FunctionArn"]
    return arn


@contextmanager
def _restored(patches: PatchSet) -> Iterator[None]:
    try:
        yield
    finally:
        patches.restore()


@contextmanager
def deployed_workflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workflow]:
    """The ClassifyImage state machine deployed against emulated AWS services."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    template = load_template()
    # Every change to moto goes through one PatchSet, undone when the workflow closes: the
    # local cloud's own fixes (AWS's aws-sdk error names, executions that end as in AWS), its
    # DynamoDB request faults, and this harness's edges of the world.
    patches = PatchSet()
    step_functions_fixes.install(patches, time_scale=1.0)
    step_functions_fixes.install_end_states(patches, _IgnoreStatusChanges())
    # As in the local cloud: one client per service for the interpreter's tasks.
    install_client_cache(patches)
    retry_waits = fast_retry_waits(patches)

    host = FakeImageHost()
    rekognition = FakeRekognition(default=load_recorded("detect_labels_cat.json"))
    faults = DynamoDbRequestFaults()
    faults.install(patches)

    def detect_labels(response: RekognitionResponse) -> str:
        return rekognition.detect_labels(response.body)

    patches.replace(RekognitionResponse, "detect_labels", detect_labels)

    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        _restored(patches),
    ):
        fetch_app = import_fetch_app(monkeypatch, fetch_function_environment(template))
        monkeypatch.setattr(fetch_app, "RESOLVER", host.resolve)
        monkeypatch.setattr(fetch_app, "OPENER", host.open)
        store_environment = {"RESULTS_TABLE": RESULTS_TABLE}
        store_app = import_function_app(monkeypatch, "store_result.app", store_environment)
        # The module read its environment once, when the session first imported it: a test
        # before this one (tests/unit/bad_input) may have left another table's name in its
        # SETTINGS. This workflow's replaces it until the workflow closes, as a cold start here
        # would; the function itself keeps reading its environment at import only.
        monkeypatch.setattr(store_app, "SETTINGS", store_app.load_settings(store_environment))
        store_app.dynamodb_client.cache_clear()
        runner = LambdaRunner(
            handlers={
                "fetch_image.app.lambda_handler": fetch_app.lambda_handler,
                "store_result.app.lambda_handler": store_app.lambda_handler,
            }
        )

        def invoke_lambda(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            return runner.invoke(function, event)

        patches.replace(LambdaFunction, "_invoke_lambda", invoke_lambda)

        iam = boto3.client("iam", region_name=REGION)
        role_arn = iam.create_role(
            RoleName="tweetlens-test-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]

        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=IMAGES_BUCKET)

        table_properties = template["Resources"]["ResultsTable"]["Properties"]
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=RESULTS_TABLE,
            BillingMode=table_properties["BillingMode"],
            AttributeDefinitions=table_properties["AttributeDefinitions"],
            KeySchema=table_properties["KeySchema"],
            GlobalSecondaryIndexes=table_properties["GlobalSecondaryIndexes"],
        )

        sqs = boto3.client("sqs", region_name=REGION)
        dead_letter_queue_url = sqs.create_queue(QueueName=WORKFLOW_DLQ)["QueueUrl"]

        function_arns = {
            logical_id: create_function(template, logical_id, name, role_arn, environment)
            for logical_id, name, environment in (
                ("FetchImageFunction", FETCH_FUNCTION, fetch_function_environment(template)),
                ("StoreResultFunction", STORE_FUNCTION, {"RESULTS_TABLE": RESULTS_TABLE}),
            )
        }

        parameters = template["Parameters"]
        substitutions = {
            "ResultsTableName": RESULTS_TABLE,
            "ImagesBucketName": IMAGES_BUCKET,
            "FetchImageFunctionArn": function_arns["FetchImageFunction"],
            "StoreResultFunctionArn": function_arns["StoreResultFunction"],
            "MaxLabels": str(parameters["MaxLabels"]["Default"]),
            "MinConfidence": str(parameters["MinConfidence"]["Default"]),
        }
        sfn = boto3.client("stepfunctions", region_name=REGION)
        state_machine_arn = sfn.create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=substituted_definition(substitutions),
            roleArn=role_arn,
            type="STANDARD",
        )["stateMachineArn"]

        yield Workflow(
            sfn=sfn,
            dynamodb=dynamodb,
            s3=s3,
            sqs=sqs,
            state_machine_arn=state_machine_arn,
            dead_letter_queue_url=dead_letter_queue_url,
            host=host,
            rekognition=rekognition,
            dynamodb_faults=faults,
            lambdas=runner,
            retry_waits=retry_waits,
            substitutions=substitutions,
        )
