"""Resources moto's CloudFormation skips, created by the local cloud through the service APIs.

Alarms, bucket and queue and topic policies, secrets and SNS subscriptions are created after
the stack, with their properties resolved by the emulator's own CloudFormation resolver
(Ref, GetAtt, Sub, If) exactly as it resolved the stack."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from moto.cloudformation.parsing import clean_json

from tweetlens.localcloud.emulator import (
    Emulator,
)
from tweetlens.localcloud.errors import DeployError

logger = Logger(service="localcloud")


class EmulatedResources:
    """Creates a stack's ``Support.LOCAL_CLOUD`` resources in the emulator."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def create(
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
