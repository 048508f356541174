"""Deploy a SAM template into the emulator: package, transform offline, create, read back.

The template is transformed by SAM's own translator with no AWS call; local code and state
machine definitions are "packaged" into an artifacts bucket in the emulator the way
``sam package`` does it. Resource types moto's CloudFormation does not create are either
created here through the service API after the stack (``LOCAL_CLOUD`` in
``SUPPORTED_RESOURCE_TYPES``) or refused with an error naming the resource.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from moto.cloudformation import parsing as moto_parsing
from moto.cloudformation.exceptions import ValidationError as CloudFormationValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import clean_json
from moto.core.exceptions import ServiceException
from werkzeug.exceptions import HTTPException

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.aslcheck import check_definition, definition_json
from tweetlens.localcloud.emulated import EmulatedResources
from tweetlens.localcloud.emulator import (
    ACCOUNT_ID,
    Emulator,
)
from tweetlens.localcloud.errors import DeployError, UnknownFunctionError
from tweetlens.localcloud.eventrules import (
    check_event_resources,
)
from tweetlens.localcloud.models import (
    EventRuleConfig,
    EventSourceMappingConfig,
    FunctionConfig,
    StateMachineConfig,
)
from tweetlens.localcloud.packaging import (
    ARTIFACTS_BUCKET,
    PackagedTemplate,
    load_template,
    package,
    zip_directory,
)
from tweetlens.localcloud.properties import (
    check_functions,
    check_properties,
    check_serverless_resources,
    normalize_environment,
)
from tweetlens.localcloud.readback import StackReader
from tweetlens.localcloud.resourcetypes import (
    SUPPORTED_RESOURCE_TYPES,
    EmulatedTypeLogFilter,
    Support,
    check_no_references_to_emulated,
    check_resource_types,
)
from tweetlens.localcloud.samtransform import (
    PLACEHOLDER_DEFINITION,
    PendingSubstitution,
    fold_definition_substitutions,
    substitute_definition,
    transform,
)
from tweetlens.localcloud.subset import function_closure, subset_template

# The names callers import from here; each lives in the module of its job.
__all__ = [
    "ARTIFACTS_BUCKET",
    "PLACEHOLDER_DEFINITION",
    "SUPPORTED_RESOURCE_TYPES",
    "DeployedStack",
    "Deployer",
    "Deployment",
    "PackagedTemplate",
    "PendingSubstitution",
    "PreparedTemplate",
    "Support",
    "check_no_references_to_emulated",
    "check_parameter_value",
    "check_resource_types",
    "fold_definition_substitutions",
    "load_template",
    "only_for_function",
    "package",
    "prepare",
    "substitute_definition",
    "transform",
    "zip_directory",
]


logger = Logger(service="localcloud")

STACK_TIMEOUT_SECONDS = 60.0
_FAILED_STATUSES = ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS")


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


@dataclass(frozen=True)
class PreparedTemplate:
    """A template ready for the emulator's CloudFormation, before anything is created."""

    template: dict[str, Any]
    parameters: dict[str, str]
    packaged: PackagedTemplate
    substitutions: dict[str, PendingSubstitution]


def parameter_text(value: Any) -> str:
    """A parameter's Default, override or allowed value as the text CloudFormation makes of it.

    YAML reads an unquoted ``false``/``OFF``/``yes`` as a boolean, which CloudFormation passes
    as ``"false"``/``"true"`` (Python's ``str`` would give ``"False"``, so ``!Ref Debug``
    would differ from AWS in an ``!Equals`` and fail its own ``AllowedValues``); a number as
    its digits (a float as Python writes it: ``0.50`` becomes ``0.5``).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_parameter_value(name: str, definition: Mapping[str, Any], value: str) -> None:
    """Refuse a parameter value CloudFormation would refuse (constraints of the declaration)."""
    allowed = definition.get("AllowedValues")
    if allowed is not None:
        options = [parameter_text(option) for option in allowed]
        if value not in options:
            raise DeployError(f"parameter {name}={value!r} is not one of {options}")
    if "MinLength" in definition and len(value) < int(definition["MinLength"]):
        raise DeployError(
            f"parameter {name}={value!r} is shorter than MinLength {definition['MinLength']}"
        )
    if "MaxLength" in definition and len(value) > int(definition["MaxLength"]):
        raise DeployError(
            f"parameter {name}={value!r} is longer than MaxLength {definition['MaxLength']}"
        )
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
    check_serverless_resources(source)
    packaged = package(source, template_path.parent)
    parameters = {
        # Made text once, here: the checks below and the transform see the same value.
        name: parameter_text(parameter_overrides.get(name, definition.get("Default")))
        for name, definition in declared.items()
        if name in parameter_overrides or "Default" in definition
    }
    missing = sorted(set(declared) - set(parameters))
    if missing:
        # CloudFormation's words; moto would say "Missing parameter" for the first only.
        raise DeployError(f"Parameters: {missing} must have values (no Default, no override)")
    for name, value in parameters.items():
        check_parameter_value(name, declared[name], value)
    template = transform(packaged.template, parameters, region)
    substitutions = fold_definition_substitutions(template, packaged.definitions, parameters)
    check_resource_types(template)
    check_functions(template)
    check_properties(template, region)
    normalize_environment(template)
    check_event_resources(template)
    check_no_references_to_emulated(template)
    return PreparedTemplate(template, parameters, packaged, substitutions)


def only_for_function(
    prepared: PreparedTemplate, function: str, pseudo_parameters: Mapping[str, str]
) -> PreparedTemplate:
    """``prepared`` cut down to what ``function`` needs (``tweetlens.localcloud.subset``).

    The whole template was transformed and checked first, so a template the full deploy
    refuses is refused here with the same error. Raises ``UnknownFunctionError`` when the
    template has no such function.
    """
    resources = prepared.template["Resources"]
    functions = frozenset(
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Lambda::Function"
    )
    if function not in functions:
        raise UnknownFunctionError(function, functions)
    kept = function_closure(
        resources,
        function,
        parameters={**prepared.parameters, **pseudo_parameters},
        extra_references={
            logical_id: pending.substitutions
            for logical_id, pending in prepared.substitutions.items()
        },
    )
    template = subset_template(prepared.template, kept)
    machines_kept = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
    }
    code_keys = {
        str(resource["Properties"]["Code"].get("S3Key"))
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::Lambda::Function"
        and isinstance(resource.get("Properties", {}).get("Code"), dict)
    }
    packaged = PackagedTemplate(
        template=prepared.packaged.template,
        code_uris={k: v for k, v in prepared.packaged.code_uris.items() if k in kept},
        definitions=prepared.packaged.definitions,
        uploads={
            key: body
            for key, body in prepared.packaged.uploads.items()
            if key in code_keys
            or (key.startswith("statemachine/") and key.split("/")[1] in machines_kept)
        },
    )
    substitutions = {k: v for k, v in prepared.substitutions.items() if k in kept}
    return PreparedTemplate(template, prepared.parameters, packaged, substitutions)


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
        if not any(isinstance(f, EmulatedTypeLogFilter) for f in moto_logger.filters):
            moto_logger.addFilter(EmulatedTypeLogFilter())

    def deploy(
        self,
        template_path: Path,
        stack_name: str,
        parameter_overrides: Mapping[str, str],
        *,
        only_function: str | None = None,
    ) -> Deployment:
        """Create the stack; with ``only_function``, only what that function needs."""
        started = time.monotonic()
        prepared = prepare(template_path, parameter_overrides, self._emulator.region)
        if only_function is not None:
            prepared = only_for_function(
                prepared,
                only_function,
                {
                    "AWS::StackName": stack_name,
                    "AWS::Region": self._emulator.region,
                    "AWS::AccountId": ACCOUNT_ID,
                    "AWS::Partition": "aws",
                },
            )
        template, parameters, packaged = prepared.template, prepared.parameters, prepared.packaged
        self._upload(packaged.uploads)
        stack_id = self._create_stack(stack_name, template, parameters)
        reader = StackReader(self._emulator)
        resources, types = reader.stack_resources(stack_name)
        resource_map = self._moto_resource_map(stack_name)
        self._apply_substitutions(resources, prepared.substitutions, resource_map)
        resources.update(self._create_emulated(stack_name, template, resource_map))
        for logical_id, resource in template["Resources"].items():
            types.setdefault(logical_id, resource["Type"])
        functions = reader.functions(resources, template, packaged.code_uris)
        deployed = Deployment(
            stack_name=stack_name,
            stack_id=stack_id,
            resources=resources,
            resource_types=types,
            outputs=reader.outputs(stack_name),
            functions=functions,
            event_source_mappings=reader.event_source_mappings(functions),
            rules=reader.rules(resources, types, template, resource_map, functions),
            state_machines=reader.state_machines(resources, types, template, resource_map),
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
        patches = PatchSet()
        original = moto_parsing.parse_and_create_resource

        def named(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            # moto's CloudFormation creates resources inside the CreateStack request; its own
            # service errors pass as they are. Any other exception there (a property of a
            # shape moto cannot read, though the schema allows it) would become an HTTP 500
            # page naming nothing and a traceback in the emulator's log: answered instead as
            # CloudFormation would, a ValidationError naming the resource.
            try:
                return original(logical_id, resource_json, *args, **kwargs)
            except (ServiceException, HTTPException):
                raise
            except Exception as exc:
                raise CloudFormationValidationError(
                    message=(
                        f"Resource {logical_id} ({resource_json.get('Type')}) could not be "
                        "created by the emulator from its properties (one of a shape it cannot "
                        f"read?): {type(exc).__name__}: {exc}"
                    )
                ) from exc

        patches.replace(moto_parsing, "parse_and_create_resource", named)
        try:
            return self._create_and_wait(stack_name, template, parameters)
        finally:
            patches.restore()

    def _create_and_wait(
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
        except ResponseParserError as exc:
            # moto answers an error outside resource creation (those inside are named by
            # ``_create_stack``) with an HTTP 500 page, which botocore cannot parse either.
            raise DeployError(
                f"stack {stack_name} was refused: the emulator could not read the template "
                "(a resource property of the wrong shape? `tweetlens -v` shows the emulator's "
                f"log): {type(exc).__name__}"
            ) from exc
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
            definition = definition_json(
                logical_id, substitute_definition(substitution.text, values)
            )
            check_definition(logical_id, definition)
            try:
                sfn.update_state_machine(
                    stateMachineArn=resources[logical_id], definition=definition
                )
            except ClientError as exc:
                raise DeployError(f"{logical_id}: definition refused: {exc}") from exc

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
        return EmulatedResources(self._emulator).create(stack_name, template, resource_map)
