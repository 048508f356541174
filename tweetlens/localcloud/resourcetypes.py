"""Which resource types a template may hold in the local cloud, checked before anything is made.

moto's CloudFormation skips types it does not know with a warning and still reports
CREATE_COMPLETE; the local cloud refuses them instead, naming the resource, or creates them
itself after the stack (``Support.LOCAL_CLOUD``), in which case nothing in the stack may
refer to them."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

from tweetlens.localcloud.errors import DeployError, UnsupportedResourceError


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


class EmulatedTypeLogFilter(logging.Filter):
    """Drops moto's "No Moto CloudFormation support" line for types created here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "No Moto CloudFormation support for %s" or not record.args:
            return True
        resource_type = record.args[0] if isinstance(record.args, tuple) else None
        return SUPPORTED_RESOURCE_TYPES.get(str(resource_type)) is not Support.LOCAL_CLOUD
