"""Reading a created stack back from the emulator: what the local cloud needs to run it.

Functions (with their local code), SQS event source mappings (checked against Lambda's
rules), EventBridge rules and their targets, state machines and outputs, each read through
the service APIs as a client of the deployed stack would see them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from moto.cloudformation.parsing import clean_json

from tweetlens.localcloud.emulator import (
    Emulator,
)
from tweetlens.localcloud.errors import DeployError
from tweetlens.localcloud.eventrules import (
    KindOf,
    bus_name,
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


class StackReader:
    """Reads one stack's resources back through the emulator's service APIs."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._cfn = emulator.client("cloudformation")

    def stack_resources(self, stack_name: str) -> tuple[dict[str, str], dict[str, str]]:
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

    def outputs(self, stack_name: str) -> dict[str, str]:
        stack = self._cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    def functions(
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

    def event_source_mappings(
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

    def rules(
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

    def state_machines(
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
