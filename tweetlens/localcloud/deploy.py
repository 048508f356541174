"""Deploy a SAM template into the emulator: package, transform offline, create, read back.

The template is transformed by SAM's own translator with no AWS call; local code and state
machine definitions are "packaged" into an artifacts bucket in the emulator the way
``sam package`` does it. Resource types moto's CloudFormation does not create are either
created here through the service API after the stack (``LOCAL_CLOUD`` in
``SUPPORTED_RESOURCE_TYPES``) or refused with an error naming the resource.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import re
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import clean_json
from samcli.yamlhelper import yaml_parse
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import (
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)

from tweetlens.localcloud.emulator import (
    ACCOUNT_ID,
    FAKE_ACCESS_KEY_ID,
    FAKE_SECRET_ACCESS_KEY,
    Emulator,
)
from tweetlens.localcloud.errors import DeployError, UnsupportedResourceError
from tweetlens.localcloud.eventrules import (
    KindOf,
    bus_name,
    check_event_resources,
    kind_of_arn,
    rule_config,
)
from tweetlens.localcloud.models import (
    EventRuleConfig,
    EventSourceMappingConfig,
    FunctionConfig,
    StateMachineConfig,
    StateMachineLogging,
    TargetKind,
)

logger = Logger(service="localcloud")

ARTIFACTS_BUCKET = "localcloud-artifacts"
STACK_TIMEOUT_SECONDS = 60.0
_FAILED_STATUSES = ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS")


class Support(StrEnum):
    EMULATOR = "created by the emulator's CloudFormation"
    LOCAL_CLOUD = "created by the local cloud through the service API after the stack"


# Every type a deployed template may hold. Anything else fails the deploy, naming the
# resource, instead of being skipped with a warning as moto's CloudFormation does.
SUPPORTED_RESOURCE_TYPES: Mapping[str, Support] = {
    "AWS::CloudWatch::Dashboard": Support.EMULATOR,
    "AWS::DynamoDB::Table": Support.EMULATOR,
    "AWS::Events::EventBus": Support.EMULATOR,
    "AWS::Events::Rule": Support.EMULATOR,
    "AWS::IAM::ManagedPolicy": Support.EMULATOR,
    "AWS::IAM::Policy": Support.EMULATOR,
    "AWS::IAM::Role": Support.EMULATOR,
    "AWS::Lambda::EventSourceMapping": Support.EMULATOR,
    "AWS::Lambda::Function": Support.EMULATOR,
    "AWS::Lambda::Permission": Support.EMULATOR,
    "AWS::Lambda::Version": Support.EMULATOR,
    "AWS::Logs::LogGroup": Support.EMULATOR,
    "AWS::S3::Bucket": Support.EMULATOR,
    "AWS::SNS::Topic": Support.EMULATOR,
    "AWS::SQS::Queue": Support.EMULATOR,
    "AWS::SSM::Parameter": Support.EMULATOR,
    "AWS::StepFunctions::StateMachine": Support.EMULATOR,
    "AWS::CloudWatch::Alarm": Support.LOCAL_CLOUD,
    "AWS::S3::BucketPolicy": Support.LOCAL_CLOUD,
    "AWS::SecretsManager::Secret": Support.LOCAL_CLOUD,
    "AWS::SNS::Subscription": Support.LOCAL_CLOUD,
    "AWS::SNS::TopicPolicy": Support.LOCAL_CLOUD,
    "AWS::SQS::QueuePolicy": Support.LOCAL_CLOUD,
}


@dataclass(frozen=True)
class Deployment:
    """What a deploy produced, read back from the emulator."""

    stack_name: str
    stack_id: str
    resources: dict[str, str]
    resource_types: dict[str, str]
    outputs: dict[str, str]
    functions: dict[str, FunctionConfig]
    event_source_mappings: list[EventSourceMappingConfig]
    rules: dict[str, EventRuleConfig]
    state_machines: dict[str, StateMachineConfig]
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def schedules(self) -> dict[str, EventRuleConfig]:
        """The rules that fire on a schedule."""
        return {lid: rule for lid, rule in self.rules.items() if rule.schedule_expression}


# The name before the tooling's ``tweetlens.stack.DeployedStack`` made it ambiguous; kept so
# branches written against it still import until they are merged.
DeployedStack = Deployment


class _NoManagedPolicyLookup:
    """Managed-policy loader that never calls IAM: SAM falls back to its bundled name→ARN map."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass
class _Packaged:
    template: dict[str, Any]
    code_uris: dict[str, Path]
    definitions: dict[str, str]
    uploads: dict[str, bytes]


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML or JSON template, keeping short-form intrinsics."""
    try:
        parsed = yaml_parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read template {path}: {exc}") from exc
    if not isinstance(parsed, dict) or "Resources" not in parsed:
        raise DeployError(f"{path} is not a CloudFormation template (no Resources)")
    return parsed


def zip_directory(directory: Path) -> bytes:
    """A deterministic zip of a code directory, without byte-code caches."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(directory.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                info = zipfile.ZipInfo(str(file.relative_to(directory)), (1980, 1, 1, 0, 0, 0))
                archive.writestr(info, file.read_bytes())
    return buffer.getvalue()


def package(template: dict[str, Any], template_dir: Path) -> _Packaged:
    """Point local CodeUri/DefinitionUri at the artifacts bucket, as ``sam package`` would."""
    packaged = copy.deepcopy(template)
    resources: dict[str, Any] = packaged["Resources"]
    global_code_uri = packaged.get("Globals", {}).get("Function", {}).get("CodeUri")
    code_uris: dict[str, Path] = {}
    definitions: dict[str, str] = {}
    uploads: dict[str, bytes] = {}
    zipped: dict[Path, str] = {}
    for logical_id, resource in resources.items():
        properties = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            if "InlineCode" in properties or properties.get("PackageType") == "Image":
                raise DeployError(
                    f"{logical_id}: only functions with a local CodeUri can run in the local cloud"
                )
            code_uri = properties.get("CodeUri", global_code_uri)
            if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
                raise DeployError(
                    f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}"
                )
            directory = (template_dir / code_uri).resolve()
            if not directory.is_dir():
                raise DeployError(f"{logical_id}: CodeUri {directory} is not a directory")
            if directory not in zipped:
                archive = zip_directory(directory)
                key = f"code/{hashlib.sha256(archive).hexdigest()}.zip"
                uploads[key] = archive
                zipped[directory] = key
            code_uris[logical_id] = directory
            properties["CodeUri"] = f"s3://{ARTIFACTS_BUCKET}/{zipped[directory]}"
        elif resource.get("Type") == "AWS::Serverless::StateMachine":
            uri = properties.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                definition_path = (template_dir / uri).resolve()
                try:
                    text = definition_path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise DeployError(f"{logical_id}: cannot read DefinitionUri: {exc}") from exc
                key = f"statemachine/{logical_id}/{hashlib.sha256(text.encode()).hexdigest()}.json"
                uploads[key] = text.encode()
                definitions[key] = text
                properties["DefinitionUri"] = f"s3://{ARTIFACTS_BUCKET}/{key}"
            elif uri is not None:
                raise DeployError(f"{logical_id}: DefinitionUri must be a local file, got {uri!r}")
    return _Packaged(packaged, code_uris, definitions, uploads)


def transform(
    template: dict[str, Any], parameters: Mapping[str, str], region: str
) -> dict[str, Any]:
    """Run SAM's translator offline (same steps as ``samtranslator...transform``, with a region)."""
    if "Transform" not in template:
        return copy.deepcopy(template)
    fragment = copy.deepcopy(template)
    parameter_values: dict[str, Any] = dict(parameters)
    to_py27_compatible_template(fragment, parameter_values)
    # The translator needs a region for ARNs; a session built here keeps it from reading the
    # developer's AWS configuration.
    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
    )
    translator = Translator(None, Parser(), boto_session=session)
    policy_loader = _NoManagedPolicyLookup()
    try:
        transformed = translator.translate(
            fragment, parameter_values=parameter_values, get_managed_policy_map=policy_loader.load
        )
    except InvalidDocumentException as exc:
        reasons = "; ".join(str(cause) for cause in exc.causes)
        raise DeployError(f"SAM transform failed: {reasons}") from exc
    result: dict[str, Any] = undo_mark_unicode_str_in_template(transformed)
    return result


def _literal_join(value: Any) -> str | None:
    join = value.get("Fn::Join") if isinstance(value, dict) and len(value) == 1 else None
    if (
        isinstance(join, list)
        and len(join) == 2
        and isinstance(join[0], str)
        and isinstance(join[1], list)
        and all(isinstance(part, str) for part in join[1])
    ):
        return join[0].join(join[1])
    return None


@dataclass(frozen=True)
class PendingSubstitution:
    """A state machine definition whose substitutions are applied after the stack exists."""

    text: str
    substitutions: dict[str, Any]


# A valid definition the state machine holds until its real one is substituted; nothing can
# start an execution before the deploy finishes.
PLACEHOLDER_DEFINITION = json.dumps(
    {"StartAt": "Deploying", "States": {"Deploying": {"Type": "Pass", "End": True}}}
)
_SUBSTITUTION = re.compile(r"\$\{([^}]+)\}")


def fold_definition_substitutions(
    template: dict[str, Any], definitions: Mapping[str, str]
) -> dict[str, PendingSubstitution]:
    """Give every state machine a literal ``DefinitionString``.

    moto's CloudFormation ignores ``DefinitionSubstitutions`` and cannot read
    ``DefinitionS3Location``. Its ``Fn::Sub`` cannot be used instead: it runs Python's
    ``string.Template``, which turns the ASL context-object prefix ``$$`` into ``$``. So a
    machine with substitutions is created with a placeholder and its real definition is
    substituted here and set once the values exist (``apply_substitutions``).
    """
    pending: dict[str, PendingSubstitution] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource.setdefault("Properties", {})
        location = properties.pop("DefinitionS3Location", None)
        if location is not None:
            text = definitions.get(location.get("Key", "")) if isinstance(location, dict) else None
            if text is None:
                raise DeployError(f"{logical_id}: DefinitionS3Location must come from a local file")
        elif "Definition" in properties:
            text = json.dumps(properties.pop("Definition"))
        elif isinstance(properties.get("DefinitionString"), str):
            text = properties["DefinitionString"]
        elif (joined := _literal_join(properties.get("DefinitionString"))) is not None:
            # SAM writes an inline Definition as a Join of its pretty-printed lines.
            text = joined
        else:
            # An intrinsic already builds the string; substitutions cannot be folded into it.
            if "DefinitionSubstitutions" in properties:
                raise DeployError(
                    f"{logical_id}: DefinitionSubstitutions need a literal definition"
                )
            continue
        substitutions = properties.pop("DefinitionSubstitutions", None)
        if substitutions:
            pending[logical_id] = PendingSubstitution(text, dict(substitutions))
            properties["DefinitionString"] = PLACEHOLDER_DEFINITION
        else:
            properties["DefinitionString"] = text
    return pending


def substitute_definition(text: str, values: Mapping[str, Any]) -> str:
    """Replace ``${Name}`` for each substitution Name, as Step Functions does."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _SUBSTITUTION.sub(replace, text)


def check_resource_types(template: Mapping[str, Any]) -> None:
    """Refuse, by logical id, any resource the local cloud cannot create."""
    for logical_id, resource in template["Resources"].items():
        resource_type = resource.get("Type", "")
        if resource_type not in SUPPORTED_RESOURCE_TYPES:
            raise UnsupportedResourceError(logical_id, resource_type)
        if resource_type == "AWS::SSM::Parameter" and "Name" not in resource.get("Properties", {}):
            raise DeployError(
                f"{logical_id}: AWS::SSM::Parameter needs an explicit Name in the local cloud"
            )


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            yield str(attribute[0])
        elif isinstance(attribute, str):
            yield attribute.split(".")[0]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, str) and "${" in value:
        for part in value.split("${")[1:]:
            yield part.split("}")[0].split(".")[0]


def check_no_references_to_emulated(template: Mapping[str, Any]) -> None:
    """Resources created after the stack cannot be referenced from inside it."""
    emulated = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if SUPPORTED_RESOURCE_TYPES.get(resource.get("Type", "")) is Support.LOCAL_CLOUD
    }
    holders: dict[str, Any] = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if logical_id not in emulated
    }
    holders.update(
        {f"Outputs.{name}": output for name, output in template.get("Outputs", {}).items()}
    )
    for holder, body in holders.items():
        for reference in _references(body):
            if reference in emulated:
                raise DeployError(
                    f"{holder} refers to {reference}, which the local cloud creates only after "
                    "the stack; it cannot be referenced from the stack"
                )


@dataclass(frozen=True)
class PreparedTemplate:
    """A template ready for the emulator's CloudFormation, before anything is created."""

    template: dict[str, Any]
    parameters: dict[str, str]
    packaged: _Packaged
    substitutions: dict[str, PendingSubstitution]


def check_parameter_value(name: str, definition: Mapping[str, Any], value: str) -> None:
    """Refuse a parameter value CloudFormation would refuse (constraints of the declaration)."""
    allowed = definition.get("AllowedValues")
    if allowed is not None and value not in [str(option) for option in allowed]:
        raise DeployError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = definition.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise DeployError(f"parameter {name}={value!r} does not match {pattern}")
    if definition.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise DeployError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in definition and number < float(definition["MinValue"]):
            raise DeployError(f"parameter {name}={value} is below {definition['MinValue']}")
        if "MaxValue" in definition and number > float(definition["MaxValue"]):
            raise DeployError(f"parameter {name}={value} is above {definition['MaxValue']}")


def prepare(
    template_path: Path, parameter_overrides: Mapping[str, str], region: str
) -> PreparedTemplate:
    """Package, transform and check a template offline; raises DeployError on any problem."""
    template_path = template_path.resolve()
    source = load_template(template_path)
    declared = source.get("Parameters", {})
    unknown = sorted(set(parameter_overrides) - set(declared))
    if unknown:
        raise DeployError(f"parameter overrides not declared by the template: {unknown}")
    packaged = package(source, template_path.parent)
    parameters = {
        name: str(parameter_overrides.get(name, definition.get("Default")))
        for name, definition in declared.items()
        if name in parameter_overrides or "Default" in definition
    }
    for name, value in parameters.items():
        check_parameter_value(name, declared[name], value)
    template = transform(packaged.template, parameters, region)
    substitutions = fold_definition_substitutions(template, packaged.definitions)
    check_resource_types(template)
    check_event_resources(template)
    check_no_references_to_emulated(template)
    return PreparedTemplate(template, parameters, packaged, substitutions)


class _EmulatedTypeLogFilter(logging.Filter):
    """Drops moto's "No Moto CloudFormation support" line for types created here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "No Moto CloudFormation support for %s" or not record.args:
            return True
        resource_type = record.args[0] if isinstance(record.args, tuple) else None
        return SUPPORTED_RESOURCE_TYPES.get(str(resource_type)) is not Support.LOCAL_CLOUD


class Deployer:
    """Creates one stack in the emulator and reads back what the local cloud needs."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._cfn = emulator.client("cloudformation")
        # moto warns that it skips these types; the local cloud creates them, so the warning
        # would only mislead. Warnings about any other type still show.
        emulated = "|".join(
            re.escape(resource_type)
            for resource_type, support in SUPPORTED_RESOURCE_TYPES.items()
            if support is Support.LOCAL_CLOUD
        )
        warnings.filterwarnings(
            "ignore", message=f"Tried to parse ({emulated}) but", category=UserWarning
        )
        moto_logger = logging.getLogger("moto")
        if not any(isinstance(f, _EmulatedTypeLogFilter) for f in moto_logger.filters):
            moto_logger.addFilter(_EmulatedTypeLogFilter())

    def deploy(
        self, template_path: Path, stack_name: str, parameter_overrides: Mapping[str, str]
    ) -> Deployment:
        started = time.monotonic()
        prepared = prepare(template_path, parameter_overrides, self._emulator.region)
        template, parameters, packaged = prepared.template, prepared.parameters, prepared.packaged
        self._upload(packaged.uploads)
        stack_id = self._create_stack(stack_name, template, parameters)
        resources, types = self._stack_resources(stack_name)
        resource_map = self._moto_resource_map(stack_name)
        self._apply_substitutions(resources, prepared.substitutions, resource_map)
        resources.update(self._create_emulated(stack_name, template, resource_map))
        for logical_id, resource in template["Resources"].items():
            types.setdefault(logical_id, resource["Type"])
        functions = self._functions(resources, template, packaged.code_uris)
        deployed = Deployment(
            stack_name=stack_name,
            stack_id=stack_id,
            resources=resources,
            resource_types=types,
            outputs=self._outputs(stack_name),
            functions=functions,
            event_source_mappings=self._event_source_mappings(functions),
            rules=self._rules(resources, types, template, resource_map, functions),
            state_machines=self._state_machines(resources, types, template, resource_map),
            parameters=parameters,
        )
        logger.info(
            "Stack deployed",
            stack_name=stack_name,
            resources=len(resources),
            seconds=round(time.monotonic() - started, 2),
        )
        return deployed

    def _upload(self, uploads: Mapping[str, bytes]) -> None:
        s3 = self._emulator.client("s3")
        try:
            s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        for key, body in uploads.items():
            s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=body)

    def _create_stack(
        self, stack_name: str, template: Mapping[str, Any], parameters: Mapping[str, str]
    ) -> str:
        try:
            response = self._cfn.create_stack(
                StackName=stack_name,
                TemplateBody=json.dumps(template),
                Parameters=[
                    {"ParameterKey": key, "ParameterValue": value}
                    for key, value in parameters.items()
                ],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        except ClientError as exc:
            raise DeployError(f"stack {stack_name} was refused: {exc}") from exc
        stack_id: str = response["StackId"]
        deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
        while True:
            status = self._cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
            if status == "CREATE_COMPLETE":
                return stack_id
            if status in _FAILED_STATUSES:
                events = self._cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
                reasons = [
                    f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}"
                    for event in events
                    if event.get("ResourceStatus", "").endswith("FAILED")
                ]
                raise DeployError(f"stack {stack_name} ended {status}: {reasons}")
            if time.monotonic() > deadline:
                raise DeployError(
                    f"stack {stack_name} still {status} after {STACK_TIMEOUT_SECONDS}s"
                )
            time.sleep(0.1)

    def _apply_substitutions(
        self,
        resources: Mapping[str, str],
        pending: Mapping[str, PendingSubstitution],
        resource_map: Any,
    ) -> None:
        sfn = self._emulator.client("stepfunctions")
        for logical_id, substitution in pending.items():
            values = clean_json(copy.deepcopy(substitution.substitutions), resource_map)
            unresolved = sorted(name for name, value in values.items() if value is None)
            if unresolved:
                raise DeployError(f"{logical_id}: substitutions {unresolved} did not resolve")
            definition = substitute_definition(substitution.text, values)
            try:
                sfn.update_state_machine(
                    stateMachineArn=resources[logical_id], definition=definition
                )
            except ClientError as exc:
                raise DeployError(f"{logical_id}: definition refused: {exc}") from exc

    def _stack_resources(self, stack_name: str) -> tuple[dict[str, str], dict[str, str]]:
        resources: dict[str, str] = {}
        types: dict[str, str] = {}
        paginator = self._cfn.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=stack_name):
            for summary in page["StackResourceSummaries"]:
                if not summary.get("LogicalResourceId"):
                    continue
                resources[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
                types[summary["LogicalResourceId"]] = summary["ResourceType"]
        return resources, types

    def _moto_resource_map(self, stack_name: str) -> Any:
        # The emulator runs in this process: its own resolver evaluates Ref/GetAtt/Sub/If for
        # the resources created after the stack, exactly as it did for the stack itself.
        backend = cloudformation_backends[ACCOUNT_ID][self._emulator.region]
        for stack in backend.stacks.values():
            if stack.name == stack_name and stack.status == "CREATE_COMPLETE":
                return stack.resource_map
        raise DeployError(f"stack {stack_name} not found in the emulator")

    def _create_emulated(
        self, stack_name: str, template: Mapping[str, Any], resource_map: Any
    ) -> dict[str, str]:
        creators: dict[str, Callable[[str, dict[str, Any]], str]] = {
            "AWS::CloudWatch::Alarm": lambda lid, p: self._alarm(stack_name, lid, p),
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::SecretsManager::Secret": lambda lid, p: self._secret(stack_name, lid, p),
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SNS::TopicPolicy": lambda lid, p: self._topic_policy(stack_name, lid, p),
            "AWS::SQS::QueuePolicy": lambda lid, p: self._queue_policy(stack_name, lid, p),
        }
        created: dict[str, str] = {}
        for logical_id, resource in template["Resources"].items():
            creator = creators.get(resource["Type"])
            if creator is None:
                continue
            condition = resource.get("Condition")
            if condition is not None and not resource_map.lazy_condition_map[condition]:
                continue
            properties = clean_json(copy.deepcopy(resource.get("Properties", {})), resource_map)
            try:
                created[logical_id] = creator(logical_id, properties)
            except ClientError as exc:
                raise DeployError(f"{logical_id} ({resource['Type']}) failed: {exc}") from exc
            logger.info(
                "Resource created by the local cloud",
                logical_id=logical_id,
                resource_type=resource["Type"],
                physical_id=created[logical_id],
            )
        return created

    @staticmethod
    def _generated_name(stack_name: str, logical_id: str) -> str:
        return f"{stack_name}-{logical_id}-{uuid.uuid4().hex[:12].upper()}"

    def _alarm(self, stack_name: str, logical_id: str, properties: dict[str, Any]) -> str:
        name = properties.pop("AlarmName", None) or self._generated_name(stack_name, logical_id)
        for key in ("Threshold", "Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in properties:
                properties[key] = (
                    float(properties[key]) if key == "Threshold" else int(properties[key])
                )
        self._emulator.client("cloudwatch").put_metric_alarm(AlarmName=name, **properties)
        return str(name)

    def _bucket_policy(self, logical_id: str, properties: dict[str, Any]) -> str:
        bucket = properties["Bucket"]
        self._emulator.client("s3").put_bucket_policy(
            Bucket=bucket, Policy=json.dumps(properties["PolicyDocument"])
        )
        return str(bucket)

    def _secret(self, stack_name: str, logical_id: str, properties: dict[str, Any]) -> str:
        client = self._emulator.client("secretsmanager")
        name = properties.get("Name") or self._generated_name(stack_name, logical_id)
        secret: str | None = properties.get("SecretString")
        generate = properties.get("GenerateSecretString")
        if secret is None and generate is not None:
            options = {
                key: generate[key]
                for key in ("PasswordLength", "ExcludeCharacters", "ExcludePunctuation")
                if key in generate
            }
            secret = client.get_random_password(**options)["RandomPassword"]
            if "SecretStringTemplate" in generate:
                document = json.loads(generate["SecretStringTemplate"])
                document[generate["GenerateStringKey"]] = secret
                secret = json.dumps(document)
        arguments: dict[str, Any] = {"Name": name}
        if secret is not None:
            arguments["SecretString"] = secret
        if "Description" in properties:
            arguments["Description"] = properties["Description"]
        arn: str = client.create_secret(**arguments)["ARN"]
        return arn

    def _subscription(self, logical_id: str, properties: dict[str, Any]) -> str:
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for key, value in properties.items()
            if key in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")
        }
        response = self._emulator.client("sns").subscribe(
            TopicArn=properties["TopicArn"],
            Protocol=properties["Protocol"],
            Endpoint=properties.get("Endpoint", ""),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        arn: str = response["SubscriptionArn"]
        return arn

    def _topic_policy(self, stack_name: str, logical_id: str, properties: dict[str, Any]) -> str:
        sns = self._emulator.client("sns")
        for topic in properties["Topics"]:
            sns.set_topic_attributes(
                TopicArn=topic,
                AttributeName="Policy",
                AttributeValue=json.dumps(properties["PolicyDocument"]),
            )
        return self._generated_name(stack_name, logical_id)

    def _queue_policy(self, stack_name: str, logical_id: str, properties: dict[str, Any]) -> str:
        sqs = self._emulator.client("sqs")
        for queue_url in properties["Queues"]:
            sqs.set_queue_attributes(
                QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
            )
        return self._generated_name(stack_name, logical_id)

    def _outputs(self, stack_name: str) -> dict[str, str]:
        stack = self._cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    def _functions(
        self,
        resources: Mapping[str, str],
        template: Mapping[str, Any],
        code_uris: Mapping[str, Path],
    ) -> dict[str, FunctionConfig]:
        client = self._emulator.client("lambda")
        functions: dict[str, FunctionConfig] = {}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            if logical_id not in code_uris:
                raise DeployError(
                    f"{logical_id}: plain AWS::Lambda::Function has no local code; "
                    "declare it as AWS::Serverless::Function with a local CodeUri"
                )
            response = client.get_function(FunctionName=resources[logical_id])
            configuration = response["Configuration"]
            functions[logical_id] = FunctionConfig(
                logical_id=logical_id,
                name=configuration["FunctionName"],
                arn=configuration["FunctionArn"],
                handler=configuration["Handler"],
                runtime=configuration["Runtime"],
                code_uri=code_uris[logical_id],
                timeout=int(configuration["Timeout"]),
                memory_size=int(configuration["MemorySize"]),
                environment={
                    key: str(value)
                    for key, value in configuration.get("Environment", {})
                    .get("Variables", {})
                    .items()
                },
                reserved_concurrency=response.get("Concurrency", {}).get(
                    "ReservedConcurrentExecutions"
                ),
            )
        return functions

    def _event_source_mappings(
        self, functions: Mapping[str, FunctionConfig]
    ) -> list[EventSourceMappingConfig]:
        client = self._emulator.client("lambda")
        sqs = self._emulator.client("sqs")
        mappings: list[EventSourceMappingConfig] = []
        for function in functions.values():
            listed = client.list_event_source_mappings(FunctionName=function.name)
            for mapping in listed["EventSourceMappings"]:
                source_arn: str = mapping["EventSourceArn"]
                if source_arn.split(":")[2] != "sqs":
                    raise DeployError(
                        f"{function.logical_id}: only SQS event sources are polled locally, "
                        f"not {source_arn}"
                    )
                if mapping.get("FilterCriteria"):
                    raise DeployError(
                        f"{function.logical_id}: FilterCriteria on {source_arn} is not supported"
                    )
                _, _, _, _, owner, queue_name = source_arn.split(":")
                queue_url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=owner)
                visibility = int(
                    sqs.get_queue_attributes(
                        QueueUrl=queue_url["QueueUrl"], AttributeNames=["VisibilityTimeout"]
                    )["Attributes"]["VisibilityTimeout"]
                )
                if visibility < function.timeout:
                    # Lambda refuses such a mapping: batches would reappear while running.
                    raise DeployError(
                        f"{function.logical_id}: queue visibility timeout {visibility}s of "
                        f"{queue_name} is less than the function timeout {function.timeout}s"
                    )
                mappings.append(
                    EventSourceMappingConfig(
                        uuid=mapping["UUID"],
                        function_name=function.name,
                        event_source_arn=source_arn,
                        queue_url=queue_url["QueueUrl"],
                        batch_size=int(mapping.get("BatchSize") or 10),
                        maximum_batching_window_seconds=int(
                            mapping.get("MaximumBatchingWindowInSeconds") or 0
                        ),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in (mapping.get("FunctionResponseTypes") or []),
                        maximum_concurrency=(mapping.get("ScalingConfig") or {}).get(
                            "MaximumConcurrency"
                        ),
                        enabled=mapping.get("State", "Enabled") == "Enabled",
                    )
                )
        return mappings

    def _rules(
        self,
        resources: Mapping[str, str],
        types: Mapping[str, str],
        template: Mapping[str, Any],
        resource_map: Any,
        functions: Mapping[str, FunctionConfig],
    ) -> dict[str, EventRuleConfig]:
        events = self._emulator.client("events")
        buses = frozenset(
            str(clean_json({"Fn::GetAtt": [logical_id, "Name"]}, resource_map))
            for logical_id in resources
            if types.get(logical_id) == "AWS::Events::EventBus"
        )
        kind_of = self._deployed_kind_of(functions)
        rules: dict[str, EventRuleConfig] = {}
        for logical_id, physical_id in resources.items():
            if types.get(logical_id) != "AWS::Events::Rule":
                continue
            declared = template["Resources"][logical_id].get("Properties", {})
            properties = clean_json(copy.deepcopy(declared), resource_map)
            name = physical_id.split("|")[-1].split("/")[-1]
            bus = bus_name(str(properties.get("EventBusName", "default")))
            described = events.describe_rule(Name=name, EventBusName=bus)
            rules[logical_id] = rule_config(
                logical_id,
                properties,
                name=name,
                arn=described["Arn"],
                enabled=described.get("State") == "ENABLED",
                kind_of=kind_of,
                buses=buses,
            )
        return rules

    def _deployed_kind_of(self, functions: Mapping[str, FunctionConfig]) -> KindOf:
        """Target kinds of resolved ARNs; a target must exist in the emulator."""
        function_names = {function.name for function in functions.values()}
        sqs = self._emulator.client("sqs")
        sfn = self._emulator.client("stepfunctions")

        def kind(arn: Any) -> TargetKind | str | None:
            if not isinstance(arn, str):
                return None
            found = kind_of_arn(arn)
            name = arn.split(":")[6] if len(arn.split(":")) > 6 else arn.split(":")[-1]
            try:
                if found == "lambda" and name not in function_names:
                    return f"target {arn} is not a function of this stack"
                if found == "sqs":
                    sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=arn.split(":")[4])
                if found == "states":
                    sfn.describe_state_machine(stateMachineArn=arn)
            except ClientError:
                return f"target {arn} does not exist"
            return found

        return kind

    def _state_machines(
        self,
        resources: Mapping[str, str],
        types: Mapping[str, str],
        template: Mapping[str, Any],
        resource_map: Any,
    ) -> dict[str, StateMachineConfig]:
        sfn = self._emulator.client("stepfunctions")
        machines: dict[str, StateMachineConfig] = {}
        for logical_id, arn in resources.items():
            if types.get(logical_id) != "AWS::StepFunctions::StateMachine":
                continue
            described = sfn.describe_state_machine(stateMachineArn=arn)
            declared = template["Resources"][logical_id].get("Properties", {})
            machine_type = clean_json(declared.get("StateMachineType", "STANDARD"), resource_map)
            machines[logical_id] = StateMachineConfig(
                logical_id=logical_id,
                arn=arn,
                name=described["name"],
                definition=described["definition"],
                type=machine_type,
                logging=_logging_of(clean_json(declared.get("LoggingConfiguration"), resource_map)),
            )
        return machines


def _logging_of(declared: Any) -> StateMachineLogging | None:
    """A machine's declared ``LoggingConfiguration`` (moto's CloudFormation drops it)."""
    if not isinstance(declared, dict) or "Level" not in declared:
        return None
    destinations = declared.get("Destinations") or []
    group = destinations[0].get("CloudWatchLogsLogGroup", {}) if destinations else {}
    return StateMachineLogging(
        level=str(declared["Level"]),
        include_execution_data=str(declared.get("IncludeExecutionData", False)).lower() == "true",
        log_group_arn=group.get("LogGroupArn"),
    )
