"""Offline preparation of a template: packaging, SAM transform, substitutions, type checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.localcloud.conftest import SAMPLE_APP, SAMPLE_TEMPLATE, TEMPLATES
from tweetlens.localcloud.deploy import (
    ARTIFACTS_BUCKET,
    PLACEHOLDER_DEFINITION,
    SUPPORTED_RESOURCE_TYPES,
    PendingSubstitution,
    Support,
    check_parameter_value,
    prepare,
    substitute_definition,
)
from tweetlens.localcloud.errors import DeployError, UnsupportedResourceError

REGION = "us-east-1"


def test_sample_app_code_is_packaged_once_and_kept_on_disk() -> None:
    # GIVEN the sample application, whose functions share one CodeUri
    # WHEN it is prepared
    prepared = prepare(SAMPLE_TEMPLATE, {}, REGION)
    # THEN every function points at the same artifact and remembers its local directory
    code = {
        logical_id: resource["Properties"]["Code"]
        for logical_id, resource in prepared.template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert sorted(code) == [
        "CheckerFunction",
        "InspectorFunction",
        "RecorderFunction",
        "SleeperFunction",
        "ValidatorFunction",
        "WorkerFunction",
    ]
    assert {location["S3Bucket"] for location in code.values()} == {ARTIFACTS_BUCKET}
    assert len({location["S3Key"] for location in code.values()}) == 1
    assert set(prepared.packaged.code_uris.values()) == {SAMPLE_APP / "functions"}


def test_definition_uri_is_read_and_its_substitutions_kept_for_after_the_stack() -> None:
    # GIVEN a state machine with a local DefinitionUri and DefinitionSubstitutions
    # WHEN the template is prepared
    prepared = prepare(SAMPLE_TEMPLATE, {}, REGION)
    properties = prepared.template["Resources"]["RouterStateMachine"]["Properties"]
    # THEN the machine is created with a placeholder and the file's text waits for its values
    text = (SAMPLE_APP / "statemachine" / "router.asl.json").read_text(encoding="utf-8")
    assert properties["DefinitionString"] == PLACEHOLDER_DEFINITION
    assert "DefinitionS3Location" not in properties
    assert "DefinitionSubstitutions" not in properties
    assert sorted(prepared.substitutions) == ["GateStateMachine", "RouterStateMachine"]
    assert prepared.substitutions["RouterStateMachine"] == PendingSubstitution(
        text,
        {
            "ItemsTableName": {"Ref": "ItemsTable"},
            "ValidatorFunctionArn": {"Fn::GetAtt": ["ValidatorFunction", "Arn"]},
            "BigThreshold": {"Ref": "BigThreshold"},
        },
    )


def test_inline_definition_is_read_too() -> None:
    # GIVEN an inline Definition with substitutions
    # WHEN the template is prepared
    prepared = prepare(TEMPLATES / "inline_definition.yaml", {}, REGION)
    pending = prepared.substitutions["Recorder"]
    # THEN SAM's joined lines become one JSON text
    assert json.loads(pending.text)["States"]["Record"]["Parameters"]["TableName"] == "${TableName}"
    assert pending.substitutions == {"TableName": {"Ref": "Table"}}


def test_substitution_replaces_only_named_values_and_keeps_context_paths() -> None:
    # GIVEN a definition with substitutions, a context-object path and an unknown name
    text = '{"a": "${Table}", "n": ${Limit}, "f": ${On}, "c.$": "$$.Execution.Id", "u": "${Other}"}'
    # WHEN the values are substituted
    result = substitute_definition(text, {"Table": "t-1", "Limit": 100, "On": False})
    # THEN strings, numbers and booleans land as Step Functions writes them; $$ is untouched
    assert result == '{"a": "t-1", "n": 100, "f": false, "c.$": "$$.Execution.Id", "u": "${Other}"}'


def test_parameter_overrides_replace_defaults() -> None:
    # GIVEN overrides for two of the three parameters
    # WHEN the template is prepared
    prepared = prepare(SAMPLE_TEMPLATE, {"Stage": "dev", "CheckerScheduleEnabled": "false"}, REGION)
    # THEN the parameters sent to CloudFormation combine overrides and defaults
    assert prepared.parameters == {
        "Stage": "dev",
        "CheckerScheduleEnabled": "false",
        "BigThreshold": "100",
    }
    rule = prepared.template["Resources"]["CheckerFunctionEveryMinute"]["Properties"]
    assert rule["State"] == {"Fn::If": ["ScheduleOn", "ENABLED", "DISABLED"]}


def test_undeclared_parameter_override_is_refused() -> None:
    # GIVEN an override for a parameter the template does not declare
    # WHEN the template is prepared
    # THEN the deploy fails naming it
    with pytest.raises(DeployError, match=r"not declared by the template: \['Stge'\]"):
        prepare(SAMPLE_TEMPLATE, {"Stge": "dev"}, REGION)


def test_unsupported_resource_type_fails_with_its_logical_id() -> None:
    # GIVEN a template with an AWS::Scheduler::Schedule
    # WHEN it is prepared
    # THEN the deploy fails naming the resource and its type
    with pytest.raises(UnsupportedResourceError) as raised:
        prepare(TEMPLATES / "unsupported_type.yaml", {}, REGION)
    assert (raised.value.logical_id, raised.value.resource_type) == (
        "NightlySchedule",
        "AWS::Scheduler::Schedule",
    )
    assert str(raised.value).startswith(
        "Resource NightlySchedule has type AWS::Scheduler::Schedule, which the local cloud "
        "cannot create"
    )


def test_ssm_parameter_without_name_is_refused() -> None:
    # GIVEN an SSM parameter without Name (moto's CloudFormation would fail the stack)
    # WHEN the template is prepared
    # THEN the deploy fails naming it
    with pytest.raises(DeployError, match="Setting: AWS::SSM::Parameter needs an explicit Name"):
        prepare(TEMPLATES / "ssm_without_name.yaml", {}, REGION)


def test_reference_to_a_resource_created_after_the_stack_is_refused() -> None:
    # GIVEN an output that refers to an alarm (created by the local cloud after the stack)
    # WHEN the template is prepared
    # THEN the deploy fails instead of outputting an unresolved value
    with pytest.raises(DeployError, match=r"Outputs\.AlarmName refers to TopicAlarm"):
        prepare(TEMPLATES / "output_refers_to_alarm.yaml", {}, REGION)


def test_missing_code_directory_is_refused(tmp_path: Path) -> None:
    # GIVEN the sample template copied somewhere without its functions folder
    template = tmp_path / "template.yaml"
    template.write_text(SAMPLE_TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    # WHEN it is prepared
    # THEN the deploy fails naming the first function and the directory
    with pytest.raises(
        DeployError, match=r"CheckerFunction: CodeUri .*functions is not a directory"
    ):
        prepare(template, {}, REGION)


def test_emulated_types_are_listed_as_created_by_the_local_cloud() -> None:
    # GIVEN the table of supported types
    # WHEN the types created after the stack are listed
    emulated = sorted(
        t for t, support in SUPPORTED_RESOURCE_TYPES.items() if support is Support.LOCAL_CLOUD
    )
    # THEN they are exactly those moto's CloudFormation skips and the local cloud creates
    assert emulated == [
        "AWS::CloudWatch::Alarm",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SecretsManager::Secret",
    ]


@pytest.mark.parametrize(
    ("definition", "value", "message"),
    [
        ({"Type": "String", "AllowedValues": ["dev", "prod"]}, "qa", "is not one of"),
        ({"Type": "String", "AllowedPattern": "^[a-z]+$"}, "Cat1", "does not match"),
        ({"Type": "Number"}, "ten", "is not a number"),
        ({"Type": "Number", "MinValue": 2}, "1", "is below 2"),
        ({"Type": "Number", "MaxValue": 100}, "101", "is above 100"),
    ],
)
def test_parameter_values_outside_the_declaration_are_refused(
    definition: dict[str, object], value: str, message: str
) -> None:
    # GIVEN a parameter declaration with a constraint CloudFormation enforces
    # WHEN a value that breaks it is given
    # THEN the deploy is refused, naming the parameter and the constraint
    with pytest.raises(DeployError, match=message) as refused:
        check_parameter_value("Example", definition, value)
    assert str(refused.value).startswith("parameter Example=")


def test_parameter_values_inside_the_declaration_are_accepted() -> None:
    # GIVEN the constraints of this repo's template parameters
    # WHEN values inside them are given
    # THEN nothing is raised
    check_parameter_value("Stage", {"Type": "String", "AllowedValues": ["dev", "prod"]}, "prod")
    check_parameter_value("Max", {"Type": "Number", "MinValue": 2, "MaxValue": 9}, "9")
    check_parameter_value("Tags", {"Type": "String", "AllowedPattern": "^[a-z,]+$"}, "cat,dog")
